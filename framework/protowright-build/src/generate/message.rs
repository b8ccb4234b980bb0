//! Per-message glue: delivery settings, protocol roots, and `Outgoing` for
//! sends that do not name the root.

use std::fmt::Write;

use crate::model::{FileModel, MessageModel, RootModel, RouteModel, Sending, VariantModel};

/// Appends the glue for every message of one file.
pub(super) fn generate(file: &FileModel, runtime: &str, buf: &mut String) {
    for message in &file.messages {
        message_info(message, runtime, buf);
    }
    for root in &file.roots {
        protocol(root, runtime, buf);
        root_outgoing(root, runtime, buf);
        for variant in &root.variants {
            from_variant(root, variant, buf);
            member_outgoing(root, variant, runtime, buf);
        }
    }
}

fn message_info(message: &MessageModel, runtime: &str, buf: &mut String) {
    let MessageModel { rust_path, route } = message;
    let RouteModel {
        name,
        delivery,
        channel,
        max_size,
    } = route;
    let max_size = max_size_expr(*max_size);
    let _ = write!(
        buf,
        r#"
impl {runtime}::MessageInfo for {rust_path} {{
    const NAME: &'static str = "{name}";
    const DELIVERY: {runtime}::Delivery = {runtime}::Delivery::{delivery};
    const CHANNEL: u32 = {channel};
    const MAX_SIZE: ::core::option::Option<u32> = {max_size};
}}
"#
    );
}

fn max_size_expr(max_size: u32) -> String {
    match max_size {
        0 => "::core::option::Option::None".to_owned(),
        n => format!("::core::option::Option::Some({n})"),
    }
}

fn protocol(root: &RootModel, runtime: &str, buf: &mut String) {
    let RootModel {
        rust_path,
        kind_path,
        oneof_field,
        variants,
        ..
    } = root;
    let names: Vec<String> = variants
        .iter()
        .map(|v| format!("{:?}", v.proto_name))
        .collect();
    let arms: String = variants
        .iter()
        .map(|v| {
            format!(
                "::core::option::Option::Some({kind_path}::{}(_)) => ::core::option::Option::Some({:?}),\n",
                v.ident, v.proto_name
            )
        })
        .collect();
    let _ = write!(
        buf,
        r#"
impl {runtime}::Protocol for {rust_path} {{
    type Kind = {kind_path};
    const MESSAGES: &'static [&'static str] = &[{names}];
    fn into_kind(self) -> ::core::option::Option<Self::Kind> {{
        self.{oneof_field}
    }}
    fn kind_name(&self) -> ::core::option::Option<&'static str> {{
        match &self.{oneof_field} {{
            {arms}
            ::core::option::Option::None => ::core::option::Option::None,
        }}
    }}
}}
"#,
        names = names.join(", "),
    );
}

/// A root is its own protocol; it travels on the route of the message it
/// holds.
fn root_outgoing(root: &RootModel, runtime: &str, buf: &mut String) {
    let RootModel {
        rust_path,
        kind_path,
        oneof_field,
        variants,
        ..
    } = root;
    let arms: String = variants
        .iter()
        .map(|v| {
            format!(
                "::core::option::Option::Some({kind_path}::{}(_)) => {},\n",
                v.ident,
                variant_route(v, runtime)
            )
        })
        .collect();
    let _ = write!(
        buf,
        r#"
/// Sent as is; it travels on the route of the message it holds (its own
/// when it holds none).
impl {runtime}::Outgoing for {rust_path} {{
    type Protocol = Self;
    fn route(&self) -> {runtime}::Route {{
        match &self.{oneof_field} {{
            {arms}
            ::core::option::Option::None => {runtime}::Route::of::<Self>(),
        }}
    }}
    fn into_root(self) -> Self {{
        self
    }}
}}
"#
    );
}

/// The route of a protocol message: from its `MessageInfo` when this build
/// generated it, written out from its schema options otherwise (a type
/// mapped with `extern_path`, such as a well-known type, need not implement
/// `MessageInfo`).
fn variant_route(variant: &VariantModel, runtime: &str) -> String {
    if variant.sending != Sending::Extern {
        return format!("{runtime}::Route::of::<{}>()", variant.type_path);
    }
    let RouteModel {
        name,
        delivery,
        channel,
        max_size,
    } = &variant.route;
    format!(
        "{runtime}::Route {{ name: {name:?}, delivery: {runtime}::Delivery::{delivery}, \
         channel: {channel}, max_size: {} }}",
        max_size_expr(*max_size)
    )
}

fn from_variant(root: &RootModel, variant: &VariantModel, buf: &mut String) {
    let RootModel {
        full_name,
        rust_path,
        kind_path,
        oneof_field,
        has_other_fields,
        ..
    } = root;
    let rest = if *has_other_fields {
        "..::core::default::Default::default()"
    } else {
        ""
    };
    let doc = match &variant.sending {
        Sending::Shared(roots) => format!(
            "\n/// `{}` is listed in several protocol roots (`{}`), so it does not\n\
             /// implement `Outgoing`: send it wrapped in the root it is meant for, as\n\
             /// `{rust_path}::from(message)`.",
            variant.proto_name,
            roots.join("`, `"),
        ),
        Sending::Extern => format!(
            "\n/// `{}` is not generated by this build, so it does not implement\n\
             /// `Outgoing` here: send it wrapped in `{full_name}`.",
            variant.proto_name,
        ),
        Sending::Direct | Sending::Root => String::new(),
    };
    let _ = write!(
        buf,
        r#"{doc}
impl ::core::convert::From<{ty}> for {rust_path} {{
    fn from(message: {ty}) -> Self {{
        Self {{ {oneof_field}: ::core::option::Option::Some({kind_path}::{ident}(message)), {rest} }}
    }}
}}
"#,
        ty = variant.type_path,
        ident = variant.ident,
    );
}

/// A message only one root lists belongs to that root's protocol, so a
/// connection sends it without being told the root.
fn member_outgoing(root: &RootModel, variant: &VariantModel, runtime: &str, buf: &mut String) {
    if variant.sending != Sending::Direct {
        return;
    }
    let RootModel {
        full_name,
        rust_path,
        ..
    } = root;
    let ty = &variant.type_path;
    let _ = write!(
        buf,
        r#"
/// Sent as the `{full_name}` protocol, the only root that lists it.
impl {runtime}::Outgoing for {ty} {{
    type Protocol = {rust_path};
    fn route(&self) -> {runtime}::Route {{
        {runtime}::Route::of::<Self>()
    }}
    fn into_root(self) -> {rust_path} {{
        <{rust_path} as ::core::convert::From<Self>>::from(self)
    }}
}}
"#
    );
}
