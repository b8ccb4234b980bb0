//! What generated code implements: per-message delivery settings, protocol
//! roots and method descriptors.
//!
//! `protowright-build` reads the options in `protowright/v1/options.proto`
//! and emits an impl of [`MessageInfo`] for every message, an impl of
//! [`Protocol`] for every protocol root, and a [`Method`] constant for every
//! service method. Transports read these constants to pick a channel, a size
//! limit, or whether a failed call may be retried.

pub use crate::v1::Delivery;

/// The most channels a connection has (channel ids `0..MAX_CHANNELS`).
/// `protowright-build` refuses a schema whose `channel` option is not below
/// it, so a protocol that builds never names a channel a connection lacks.
pub const MAX_CHANNELS: u32 = 256;

/// Delivery settings of a generated message type, from its schema options.
pub trait MessageInfo {
    /// The message's fully qualified protobuf name, e.g. `game.v1.PlayerState`.
    const NAME: &'static str;
    /// How the message travels (`option (protowright.v1.delivery)`);
    /// [`Delivery::ReliableOrdered`] unless the schema says otherwise.
    const DELIVERY: Delivery;
    /// The channel (ordered stream) it travels on (`option (protowright.v1.channel)`).
    const CHANNEL: u32;
    /// The largest encoded size a peer accepts for it
    /// (`option (protowright.v1.max_size)`); `None` means the transport's maximum.
    const MAX_SIZE: Option<u32>;
}

/// A protocol root: a message whose single `oneof` lists every message of a
/// protocol (`option (protowright.v1.protocol) = true`).
///
/// Every listed message converts into the root with `From`, so senders write
/// `Root::from(msg)` or `msg.into()`; receivers call
/// [`into_kind`](Self::into_kind) and `match` on the result.
pub trait Protocol: prost::Message + Default + Sized {
    /// The generated `oneof` enum: one variant per protocol message.
    type Kind;
    /// The protobuf names of the protocol's messages, in field order.
    const MESSAGES: &'static [&'static str];
    /// Takes the message out of the root; `None` when the sender set none
    /// (or one this build's schema does not know).
    fn into_kind(self) -> Option<Self::Kind>;
    /// The protobuf name of the message the root holds, for logs and errors.
    fn kind_name(&self) -> Option<&'static str>;
}

/// How one message travels: the delivery, channel and size limit its
/// schema options give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The message's fully qualified protobuf name.
    pub name: &'static str,
    /// Its delivery (`option (protowright.v1.delivery)`).
    pub delivery: Delivery,
    /// Its channel (`option (protowright.v1.channel)`).
    pub channel: u32,
    /// Its size limit (`option (protowright.v1.max_size)`), if any.
    pub max_size: Option<u32>,
}

impl Route {
    /// The route the schema options of `M` give it.
    pub const fn of<M: MessageInfo>() -> Self {
        Self {
            name: M::NAME,
            delivery: M::DELIVERY,
            channel: M::CHANNEL,
            max_size: M::MAX_SIZE,
        }
    }
}

/// A message a connection can send: a protocol root, or one of the
/// messages its `oneof` lists.
///
/// `protowright-build` implements it for every protocol root and for every
/// message listed in exactly one root of the same build, so
/// `connection.send(chat_line)` needs no type annotation: the message knows
/// its protocol (what the receiver decodes) and its route (the delivery and
/// channel from its schema options). A message listed in several roots is
/// sent by wrapping it in the root it is meant for: `Root::from(message)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a protocol message: no protocol root lists it",
    label = "not listed in a protocol root's oneof",
    note = "list it in the oneof of a message with `option (protowright.v1.protocol) = true;`, or, if several roots list it, send `Root::from(message)`"
)]
pub trait Outgoing: Send + 'static {
    /// The protocol root the receiver decodes.
    type Protocol: Protocol;
    /// The delivery, channel and size limit of this message. For a root,
    /// those of the message it holds (the root's own when it holds none).
    fn route(&self) -> Route;
    /// The root holding this message.
    fn into_root(self) -> Self::Protocol;
}

/// A service method, as generated from the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method {
    /// The numeric id that addresses the method on the wire. Derived from
    /// [`path`](Self::path) unless pinned with `option (protowright.v1.method_id)`.
    pub id: u32,
    /// The gRPC-style path, `/package.Service/Method`.
    pub path: &'static str,
    /// Whether the schema marks the method `idempotency_level = IDEMPOTENT` or
    /// `NO_SIDE_EFFECTS`: only such calls may be retried automatically.
    pub idempotent: bool,
}

/// Derives a method's wire id from its path: FNV-1a (32-bit) over the UTF-8
/// bytes of `/package.Service/Method`.
///
/// The build step uses the same function, so ids only change when a method
/// (or its service or package) is renamed. Id 0 is reserved: a path that
/// hashes to it must pin an id in the schema.
pub const fn method_id(path: &str) -> u32 {
    let bytes = path.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        index += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_id_is_fnv1a_of_the_path() {
        // Reference values of 32-bit FNV-1a.
        assert_eq!(method_id(""), 0x811c_9dc5);
        assert_eq!(method_id("a"), 0xe40c_292c);
        assert_eq!(method_id("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn method_ids_differ_for_different_methods() {
        assert_ne!(
            method_id("/chat.v1.Chat/Send"),
            method_id("/chat.v1.Chat/Join")
        );
    }
}
