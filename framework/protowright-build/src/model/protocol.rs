//! Protocol roots (`option (protowright.v1.protocol) = true`): the messages
//! their `oneof` lists, and which of those can be sent without naming the
//! root (`protowright::Outgoing`).

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{Kind, MessageDescriptor};

use super::options::{Options, RouteModel};
use super::{FileModel, Locator, unsupported};
use crate::error::Error;
use crate::ident::{ExternPaths, to_snake, to_upper_camel, type_path};

/// A protocol root: a message whose one `oneof` lists the protocol's messages.
#[derive(Debug)]
pub(crate) struct RootModel {
    /// The fully qualified protobuf name.
    pub(crate) full_name: String,
    pub(crate) rust_path: String,
    /// The Rust path of the oneof enum, from the package's module.
    pub(crate) kind_path: String,
    /// The root's field that holds the oneof.
    pub(crate) oneof_field: String,
    /// Whether the root has fields besides the oneof.
    pub(crate) has_other_fields: bool,
    pub(crate) variants: Vec<VariantModel>,
}

/// One message of a protocol.
#[derive(Debug)]
pub(crate) struct VariantModel {
    pub(crate) ident: String,
    /// The Rust path of the message, from the root's package module.
    pub(crate) type_path: String,
    pub(crate) proto_name: String,
    /// The message's route, from its schema options.
    pub(crate) route: RouteModel,
    /// Whether it implements `protowright::Outgoing` itself, and if not, why.
    pub(crate) sending: Sending,
}

/// How a protocol message reaches `protowright::Outgoing`, which lets a
/// connection send it without naming its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sending {
    /// This build generates it and only this root lists it: it implements
    /// `Outgoing` with this root as its protocol.
    Direct,
    /// Several roots of this build list it (their full names, sorted), so
    /// its protocol is ambiguous: it has no `Outgoing` impl and is sent
    /// wrapped in the root it is meant for.
    Shared(Vec<String>),
    /// It is mapped with `extern_path`, so this build may not implement a
    /// trait for it (the orphan rule): it is sent wrapped in a root. Its
    /// route is written out from its schema options, since it need not
    /// implement `protowright::MessageInfo`.
    Extern,
    /// It is a protocol root itself, and implements `Outgoing` as its own
    /// protocol.
    Root,
}

/// Reads the protocol root `message`. Its variants start as
/// [`Sending::Direct`] (or [`Sending::Extern`]); [`settle_sending`] decides
/// once every file of the build is read.
pub(super) fn read_root(
    message: &MessageDescriptor,
    rust_path: &str,
    options: &Options,
    locator: &Locator<'_>,
    externs: &ExternPaths,
) -> Result<RootModel, Error> {
    let file = message.parent_file();
    let fail = |text: String| unsupported(locator, file.name(), message.path(), text);
    let oneofs: Vec<_> = message.oneofs().filter(|o| !o.is_synthetic()).collect();
    let [oneof] = oneofs.as_slice() else {
        return Err(fail(format!(
            "protocol root `{}` must have exactly one `oneof` listing the protocol's messages (it has {})",
            message.full_name(),
            oneofs.len()
        )));
    };
    let mut variants = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for field in oneof.fields() {
        let Kind::Message(target) = field.kind() else {
            return Err(fail(format!(
                "protocol root `{}`: field `{}` must be a message type to be a protocol message",
                message.full_name(),
                field.name()
            )));
        };
        // Both `From` and `Outgoing` pick the root's field from the
        // message's type alone, so a type may fill only one field.
        if let Some(previous) = seen.insert(target.full_name().to_owned(), field.name().to_owned())
        {
            return Err(fail(format!(
                "protocol root `{}`: `{}` appears in both `{previous}` and `{}`, so neither a `From` conversion nor a send without the root could choose; wrap one in its own message",
                message.full_name(),
                target.full_name(),
                field.name()
            )));
        }
        let target_name = format!(".{}", target.full_name());
        variants.push(VariantModel {
            ident: to_upper_camel(field.name()),
            type_path: type_path(file.package_name(), &target_name, externs),
            proto_name: target.full_name().to_owned(),
            route: options.route(&target, locator)?,
            sending: if externs.is_extern(&target_name) {
                Sending::Extern
            } else {
                Sending::Direct
            },
        });
    }
    let module = match rust_path.rsplit_once("::") {
        Some((parent, _)) => format!("{parent}::{}", to_snake(message.name())),
        None => to_snake(message.name()),
    };
    Ok(RootModel {
        full_name: message.full_name().to_owned(),
        rust_path: rust_path.to_owned(),
        kind_path: format!("{module}::{}", to_upper_camel(oneof.name())),
        oneof_field: to_snake(oneof.name()),
        has_other_fields: message
            .fields()
            .any(|f| f.containing_oneof().is_none_or(|o| o.is_synthetic())),
        variants,
    })
}

/// Decides, across every root of the build, which protocol messages
/// implement `Outgoing`: a message that is a root itself keeps its own impl,
/// and one listed in several roots gets none.
pub(super) fn settle_sending(files: &mut [FileModel]) {
    let roots: BTreeSet<String> = files
        .iter()
        .flat_map(|file| &file.roots)
        .map(|root| root.full_name.clone())
        .collect();
    let mut listed_in: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for root in files.iter().flat_map(|file| &file.roots) {
        for variant in &root.variants {
            listed_in
                .entry(variant.proto_name.clone())
                .or_default()
                .push(root.full_name.clone());
        }
    }
    for root in files.iter_mut().flat_map(|file| &mut file.roots) {
        for variant in &mut root.variants {
            if variant.sending == Sending::Extern {
                continue;
            }
            let listing = &listed_in[&variant.proto_name];
            variant.sending = if roots.contains(&variant.proto_name) {
                Sending::Root
            } else if listing.len() == 1 {
                Sending::Direct
            } else {
                let mut all = listing.clone();
                all.sort();
                Sending::Shared(all)
            };
        }
    }
}
