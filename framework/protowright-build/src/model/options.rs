//! protowright's schema options (`protowright/v1/options.proto`), read
//! through prost-reflect, and the route they give a message.

use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, MessageDescriptor, Value,
};

use super::Locator;
use crate::error::Error;

/// The most channels a connection has: a message's `channel` option must be
/// below it.
///
/// The same value as `protowright::MAX_CHANNELS`, repeated here because
/// build scripts do not depend on the runtime crate; a test in
/// `protowright-schema-tests` checks that the two agree.
pub const MAX_CHANNELS: u32 = 256;

/// The field number of `MessageOptions` in `DescriptorProto`, for locating a
/// message's options in source info.
const MESSAGE_OPTIONS_FIELD: i32 = 7;

/// protowright's option extensions, when the schemas import them.
pub(crate) struct Options {
    delivery: Option<ExtensionDescriptor>,
    channel: Option<ExtensionDescriptor>,
    max_size: Option<ExtensionDescriptor>,
    pub(super) protocol: Option<ExtensionDescriptor>,
    pub(super) method_id: Option<ExtensionDescriptor>,
}

impl Options {
    pub(crate) fn find(pool: &DescriptorPool) -> Self {
        let find = |name: &str| pool.get_extension_by_name(&format!("protowright.v1.{name}"));
        Self {
            delivery: find("delivery"),
            channel: find("channel"),
            max_size: find("max_size"),
            protocol: find("protocol"),
            method_id: find("method_id"),
        }
    }

    /// The route the options of `message` give it.
    ///
    /// Fails when its `channel` is not below [`MAX_CHANNELS`], pointing at
    /// the option.
    pub(crate) fn route(
        &self,
        message: &MessageDescriptor,
        locator: &Locator<'_>,
    ) -> Result<RouteModel, Error> {
        let settings = message.options();
        let channel = u32_option(option(&settings, &self.channel));
        if channel >= MAX_CHANNELS {
            let mut path = message.path().to_vec();
            path.push(MESSAGE_OPTIONS_FIELD);
            if let Some(ext) = &self.channel {
                path.push(ext.number() as i32);
            }
            let (location, excerpt) = locator.locate(message.parent_file().name(), &path);
            return Err(Error::Schema {
                location: Some(location),
                message: format!(
                    "`{}` is on channel {channel}, beyond the {MAX_CHANNELS} channels a \
                     connection has (0-{}); pick a channel below {MAX_CHANNELS}",
                    message.full_name(),
                    MAX_CHANNELS - 1,
                ),
                excerpt,
            });
        }
        Ok(RouteModel {
            name: message.full_name().to_owned(),
            delivery: delivery_variant(option(&settings, &self.delivery)),
            channel,
            max_size: u32_option(option(&settings, &self.max_size)),
        })
    }
}

/// How a message travels: what `protowright::Route` holds, from its schema
/// options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteModel {
    /// The fully qualified protobuf name.
    pub(crate) name: String,
    /// The `protowright::Delivery` variant name.
    pub(crate) delivery: &'static str,
    pub(crate) channel: u32,
    /// 0 when the schema sets no limit.
    pub(crate) max_size: u32,
}

/// The value of extension `ext` in `options`, when the schema sets it.
pub(crate) fn option(options: &DynamicMessage, ext: &Option<ExtensionDescriptor>) -> Option<Value> {
    let ext = ext.as_ref()?;
    options
        .has_extension(ext)
        .then(|| options.get_extension(ext).into_owned())
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
