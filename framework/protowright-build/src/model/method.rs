//! A service method's wire identity: its id (derived or pinned) and whether
//! it may be retried.

use prost_reflect::{MethodDescriptor, Value};
use prost_types::method_options::IdempotencyLevel;

use super::options::{Options, option};
use super::{Locator, unsupported};
use crate::error::Error;

/// A method's wire identity.
#[derive(Debug, Clone)]
pub(crate) struct MethodModel {
    pub(crate) id: u32,
    pub(crate) path: String,
    pub(crate) idempotent: bool,
}

pub(super) fn read_method(
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
