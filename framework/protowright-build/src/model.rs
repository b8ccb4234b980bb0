//! What the schemas say that protowright generates code for: each message's
//! delivery settings, protocol roots, and each method's wire id — read from
//! protowright's custom options through prost-reflect, which keeps the
//! extensions that prost's own descriptor types drop.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use prost_reflect::{
    DescriptorPool, ExtensionDescriptor, FileDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use prost_types::FileDescriptorSet;
use prost_types::method_options::IdempotencyLevel;

use crate::diagnostic::{disk_path, excerpt};
use crate::error::{Error, Location, MethodIdClash};
use crate::ident::{ExternPaths, to_snake, to_upper_camel, type_path};

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
    pub(crate) full_name: String,
    /// The Rust path from the package's module.
    pub(crate) rust_path: String,
    /// The `protowright::Delivery` variant name.
    pub(crate) delivery: &'static str,
    pub(crate) channel: u32,
    pub(crate) max_size: u32,
}

/// A protocol root: a message whose one `oneof` lists the protocol's messages.
#[derive(Debug)]
pub(crate) struct RootModel {
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
    pub(crate) type_path: String,
    pub(crate) proto_name: String,
}

/// A method's wire identity.
#[derive(Debug, Clone)]
pub(crate) struct MethodModel {
    pub(crate) id: u32,
    pub(crate) path: String,
    pub(crate) idempotent: bool,
}

/// protowright's option extensions, when the schemas import them.
struct Options {
    delivery: Option<ExtensionDescriptor>,
    channel: Option<ExtensionDescriptor>,
    max_size: Option<ExtensionDescriptor>,
    protocol: Option<ExtensionDescriptor>,
    method_id: Option<ExtensionDescriptor>,
}

impl Options {
    fn find(pool: &DescriptorPool) -> Self {
        let find = |name: &str| pool.get_extension_by_name(&format!("protowright.v1.{name}"));
        Self {
            delivery: find("delivery"),
            channel: find("channel"),
            max_size: find("max_size"),
            protocol: find("protocol"),
            method_id: find("method_id"),
        }
    }
}

fn option(
    options: &prost_reflect::DynamicMessage,
    ext: &Option<ExtensionDescriptor>,
) -> Option<Value> {
    let ext = ext.as_ref()?;
    options
        .has_extension(ext)
        .then(|| options.get_extension(ext).into_owned())
}

/// Finds where a descriptor path points in its file, for error messages.
pub(crate) struct Locator<'a> {
    files: &'a FileDescriptorSet,
    includes: &'a [PathBuf],
}

impl<'a> Locator<'a> {
    pub(crate) fn new(files: &'a FileDescriptorSet, includes: &'a [PathBuf]) -> Self {
        Self { files, includes }
    }

    /// The location of the element at `path` in `file`; line 1, column 1 of
    /// the file when its source info does not cover the element.
    pub(crate) fn locate(&self, file: &str, path: &[i32]) -> (Location, Option<String>) {
        let span = self
            .files
            .file
            .iter()
            .find(|f| f.name() == file)
            .and_then(|f| f.source_code_info.as_ref())
            .and_then(|info| info.location.iter().find(|l| l.path == path))
            .map(|l| l.span.clone())
            .unwrap_or_default();
        let line = span.first().copied().unwrap_or(0).max(0) as usize;
        let column = span.get(1).copied().unwrap_or(0).max(0) as usize;
        let shown = disk_path(file, self.includes);
        let excerpt = excerpt(std::path::Path::new(&shown), line, column, None);
        (
            Location {
                file: shown,
                line: line + 1,
                column: column + 1,
            },
            excerpt,
        )
    }
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
                    let info = read_method(&method, &options, locator)?;
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
        if message.is_map_entry() {
            continue;
        }
        let settings = message.options();
        let rust_path = type_path(
            file.package_name(),
            &format!(".{}", message.full_name()),
            externs,
        );
        let is_root = matches!(
            option(&settings, &options.protocol),
            Some(Value::Bool(true))
        );
        if is_root {
            model
                .roots
                .push(read_root(&message, &rust_path, locator, externs)?);
        }
        model.messages.push(MessageModel {
            full_name: message.full_name().to_owned(),
            rust_path,
            delivery: delivery_variant(option(&settings, &options.delivery)),
            channel: u32_option(option(&settings, &options.channel)),
            max_size: u32_option(option(&settings, &options.max_size)),
        });
    }
    // Declaration order reads best in the generated file.
    model.messages.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    model.roots.sort_by(|a, b| a.rust_path.cmp(&b.rust_path));
    Ok(model)
}

fn delivery_variant(value: Option<Value>) -> &'static str {
    match value {
        Some(Value::EnumNumber(1)) => "ReliableUnordered",
        Some(Value::EnumNumber(2)) => "Unreliable",
        Some(Value::EnumNumber(3)) => "UnreliableSequenced",
        _ => "ReliableOrdered",
    }
}

fn u32_option(value: Option<Value>) -> u32 {
    match value {
        Some(Value::U32(n)) => n,
        _ => 0,
    }
}

fn unsupported(locator: &Locator<'_>, file: &str, path: &[i32], message: String) -> Error {
    let (location, _) = locator.locate(file, path);
    Error::Unsupported { location, message }
}

fn read_root(
    message: &MessageDescriptor,
    rust_path: &str,
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
        if let Some(previous) = seen.insert(target.full_name().to_owned(), field.name().to_owned())
        {
            return Err(fail(format!(
                "protocol root `{}`: `{}` appears in both `{previous}` and `{}`, so a `From` conversion could not choose; wrap one in its own message",
                message.full_name(),
                target.full_name(),
                field.name()
            )));
        }
        variants.push(VariantModel {
            ident: to_upper_camel(field.name()),
            type_path: type_path(
                file.package_name(),
                &format!(".{}", target.full_name()),
                externs,
            ),
            proto_name: target.full_name().to_owned(),
        });
    }
    let module = match rust_path.rsplit_once("::") {
        Some((parent, _)) => format!("{parent}::{}", to_snake(message.name())),
        None => to_snake(message.name()),
    };
    Ok(RootModel {
        rust_path: rust_path.to_owned(),
        kind_path: format!("{module}::{}", to_upper_camel(oneof.name())),
        oneof_field: to_snake(oneof.name()),
        has_other_fields: message
            .fields()
            .any(|f| f.containing_oneof().is_none_or(|o| o.is_synthetic())),
        variants,
    })
}

fn read_method(
    method: &MethodDescriptor,
    options: &Options,
    locator: &Locator<'_>,
) -> Result<MethodModel, Error> {
    let file = method.parent_file();
    let service = method.parent_service();
    let path = format!("/{}/{}", service.full_name(), method.name());
    if method.is_client_streaming() || method.is_server_streaming() {
        return Err(unsupported(
            locator,
            file.name(),
            method.path(),
            format!(
                "`{}` is a streaming method, which protowright does not generate yet; \
                 send a stream of messages through a protocol root message instead",
                method.full_name()
            ),
        ));
    }
    let id = match option(&method.options(), &options.method_id) {
        Some(Value::U32(pinned)) => pinned,
        _ => protowright_method_id(&path),
    };
    if id == 0 {
        return Err(unsupported(
            locator,
            file.name(),
            method.path(),
            format!(
                "`{}` has wire id 0, which is reserved; pin another with `option (protowright.v1.method_id) = N;`",
                method.full_name()
            ),
        ));
    }
    let level = method
        .method_descriptor_proto()
        .options
        .as_ref()
        .map(|o| o.idempotency_level())
        .unwrap_or_default();
    Ok(MethodModel {
        id,
        path,
        idempotent: matches!(
            level,
            IdempotencyLevel::Idempotent | IdempotencyLevel::NoSideEffects
        ),
    })
}

/// The same derivation as `protowright::schema::method_id` (FNV-1a, 32-bit),
/// repeated here because build scripts do not depend on the runtime crate.
/// A runtime test checks that the two agree.
pub(crate) fn protowright_method_id(path: &str) -> u32 {
    path.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}
