//! What the schemas say that protowright generates code for: each message's
//! delivery settings, protocol roots and which of their messages can be sent
//! without naming the root, and each method's wire id — read from
//! protowright's custom options through prost-reflect, which keeps the
//! extensions that prost's own descriptor types drop.
//!
//! - `options`: the option extensions and the route they give a message;
//! - `protocol`: protocol roots and `Outgoing`;
//! - `method`: method ids;
//! - `locator`: where a descriptor sits in its file, for errors.

mod locator;
mod method;
mod options;
mod protocol;

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{DescriptorPool, FileDescriptor, MessageDescriptor, Value};
use prost_types::FileDescriptorSet;

use crate::error::{Error, Location, MethodIdClash};
use crate::ident::{ExternPaths, type_path};

pub(crate) use locator::Locator;
pub(crate) use method::MethodModel;
pub use options::MAX_CHANNELS;
pub(crate) use options::RouteModel;
pub(crate) use protocol::{RootModel, Sending, VariantModel};

use options::{Options, option};

/// Everything the generators need, per file in descriptor-set order.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// One entry per file of the descriptor set, in its order.
    pub(crate) files: Vec<FileModel>,
    /// Every method, by fully qualified name (`package.Service.Method`).
    pub(crate) methods: HashMap<String, MethodModel>,
}

/// The generated items of one `.proto` file.
#[derive(Debug, Default)]
pub(crate) struct FileModel {
    pub(crate) messages: Vec<MessageModel>,
    pub(crate) roots: Vec<RootModel>,
}

/// A message's delivery settings.
#[derive(Debug)]
pub(crate) struct MessageModel {
    /// The Rust path from the package's module.
    pub(crate) rust_path: String,
    pub(crate) route: RouteModel,
}

impl Model {
    /// Reads the model of every file in `files`. Files of packages mapped
    /// with `extern_path` get no generated code, so they get an empty model.
    pub(crate) fn read(
        files: &FileDescriptorSet,
        pool: &DescriptorPool,
        locator: &Locator<'_>,
        externs: &ExternPaths,
    ) -> Result<Self, Error> {
        let options = Options::find(pool);
        let mut model = Model::default();
        let mut ids: BTreeMap<u32, (String, Location)> = BTreeMap::new();
        for proto in &files.file {
            let Some(file) = pool.get_file_by_name(proto.name()) else {
                model.files.push(FileModel::default());
                continue;
            };
            if externs.covers_package(file.package_name()) {
                model.files.push(FileModel::default());
                continue;
            }
            model
                .files
                .push(read_file(&file, &options, locator, externs)?);
            for service in file.services() {
                for method in service.methods() {
                    let info = method::read_method(&method, &options, locator)?;
                    let location = locator.locate(file.name(), method.path()).0;
                    if let Some((other, other_location)) = ids.get(&info.id) {
                        return Err(Error::DuplicateMethodId(Box::new(MethodIdClash {
                            method: method.full_name().to_owned(),
                            location,
                            id: info.id,
                            other: other.clone(),
                            other_location: other_location.clone(),
                        })));
                    }
                    ids.insert(info.id, (method.full_name().to_owned(), location));
                    model.methods.insert(method.full_name().to_owned(), info);
                }
            }
        }
        protocol::settle_sending(&mut model.files);
        Ok(model)
    }
}

fn read_file(
    file: &FileDescriptor,
    options: &Options,
    locator: &Locator<'_>,
    externs: &ExternPaths,
) -> Result<FileModel, Error> {
    let mut model = FileModel::default();
    let mut pending: Vec<MessageDescriptor> = file.messages().collect();
    while let Some(message) = pending.pop() {
        pending.extend(message.child_messages());
        let proto_name = format!(".{}", message.full_name());
        // A message mapped on its own with `extern_path` is not generated
        // here, and the orphan rule forbids implementing traits for it.
        if message.is_map_entry() || externs.is_extern(&proto_name) {
            continue;
        }
        let rust_path = type_path(file.package_name(), &proto_name, externs);
        let is_root = matches!(
            option(&message.options(), &options.protocol),
            Some(Value::Bool(true))
        );
        if is_root {
            model.roots.push(protocol::read_root(
                &message, &rust_path, options, locator, externs,
            )?);
        }
        model.messages.push(MessageModel {
            rust_path,
            route: options.route(&message, locator)?,
        });
    }
    // Name order keeps the generated file stable.
    model
        .messages
        .sort_by(|a, b| a.route.name.cmp(&b.route.name));
    model.roots.sort_by(|a, b| a.rust_path.cmp(&b.rust_path));
    Ok(model)
}

fn unsupported(locator: &Locator<'_>, file: &str, path: &[i32], message: String) -> Error {
    let (location, _) = locator.locate(file, path);
    Error::Unsupported { location, message }
}

#[cfg(test)]
mod tests;
