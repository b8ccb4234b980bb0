//! Per-message glue: delivery settings and protocol roots.

use std::fmt::Write;

use crate::model::{FileModel, MessageModel, RootModel};

/// Appends the glue for every message of one file.
pub(super) fn generate(file: &FileModel, runtime: &str, buf: &mut String) {
    for message in &file.messages {
        message_info(message, runtime, buf);
    }
    for root in &file.roots {
        protocol(root, runtime, buf);
    }
}

fn message_info(message: &MessageModel, runtime: &str, buf: &mut String) {
    let MessageModel {
        full_name,
        rust_path,
        delivery,
        channel,
        max_size,
    } = message;
    let max_size = match max_size {
        0 => "::core::option::Option::None".to_owned(),
        n => format!("::core::option::Option::Some({n})"),
    };
    let _ = write!(
        buf,
        r#"
impl {runtime}::MessageInfo for {rust_path} {{
    const NAME: &'static str = "{full_name}";
    const DELIVERY: {runtime}::Delivery = {runtime}::Delivery::{delivery};
    const CHANNEL: u32 = {channel};
    const MAX_SIZE: ::core::option::Option<u32> = {max_size};
}}
"#
    );
}

fn protocol(root: &RootModel, runtime: &str, buf: &mut String) {
    let RootModel {
        rust_path,
        kind_path,
        oneof_field,
        has_other_fields,
        variants,
    } = root;
    let rest = if *has_other_fields {
        "..::core::default::Default::default()"
    } else {
        ""
    };
    for variant in variants {
        let _ = write!(
            buf,
            r#"
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
