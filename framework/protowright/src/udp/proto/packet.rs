//! Packets: the invariant header (version, type, connection id) and the
//! bodies of the four packet types.
//!
//! ```text
//! 0      1      2                 10
//! +------+------+-----------------+----------------------------+
//! | ver  | type | connection id   | body (by type)             |
//! +------+------+-----------------+----------------------------+
//! ```
//! The first ten bytes keep this layout in every version, so an endpoint
//! can refuse a version it does not speak and the refusal still reaches the
//! right connection. The connection id is the receiver's, except in an
//! `Initial`, where it is the id the client chose for itself.

use super::DecodeError;
use super::coding::{Put, Reader};

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

/// Bytes of the invariant header.
pub(crate) const HEADER_LEN: usize = 10;

/// A client's `Initial` must fill a datagram of at least this size, so a
/// server's answers to an address it has not validated (a `Retry` or a
/// `Refuse`) are always smaller than what that address sent.
pub const MIN_INITIAL_SIZE: usize = 1200;

/// Bytes of the checksum that ends every packet.
pub(crate) const CHECKSUM_LEN: usize = 4;

/// The longest cookie a `Retry` may carry.
pub(crate) const MAX_COOKIE_LEN: usize = 64;

/// The longest explanation a `Refuse` or a close may carry.
pub(crate) const MAX_REASON_LEN: usize = 256;

/// The packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PacketType {
    Initial = 0,
    Retry = 1,
    Data = 2,
    Reset = 3,
    Refuse = 4,
}

impl PacketType {
    fn from_u8(value: u8) -> Result<Self, DecodeError> {
        Ok(match value {
            0 => Self::Initial,
            1 => Self::Retry,
            2 => Self::Data,
            3 => Self::Reset,
            4 => Self::Refuse,
            other => return Err(DecodeError::UnknownPacketType(other)),
        })
    }
}

/// Why a server refused a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RefuseReason {
    /// The client speaks another protocol version.
    Version = 1,
    /// The client was built from another protocol schema.
    Schema = 2,
    /// The server holds as many connections as it is configured for.
    Full = 3,
    /// The server is shutting down.
    ShuttingDown = 4,
    /// The server does not accept connections at all.
    NotListening = 5,
}

impl RefuseReason {
    fn from_u8(value: u8) -> Result<Self, DecodeError> {
        Ok(match value {
            1 => Self::Version,
            2 => Self::Schema,
            3 => Self::Full,
            4 => Self::ShuttingDown,
            5 => Self::NotListening,
            _ => return Err(DecodeError::OutOfRange("refuse reason")),
        })
    }
}

/// What a client offers in its `Initial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello<'a> {
    /// A hash of the protocol schema the client was built from.
    pub(crate) schema_hash: u64,
    /// How many bytes of reliable data the server may send before it hears
    /// more (flow control).
    pub(crate) max_data: u64,
    /// The largest message the client accepts.
    pub(crate) max_message: u64,
    /// The server's cookie, empty on the first attempt.
    pub(crate) cookie: &'a [u8],
}

/// A decoded packet, borrowing from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    /// A client's connection attempt; `cid` is the client's own id.
    Initial { cid: u64, hello: Hello<'a> },
    /// A server's stateless answer to an `Initial` without a valid cookie.
    Retry { cid: u64, cookie: &'a [u8] },
    /// Frames of an established connection.
    Data {
        cid: u64,
        number: u64,
        frames: &'a [u8],
    },
    /// "I hold no connection with id `cid`": the sender restarted or forgot it.
    Reset { cid: u64 },
    /// A refused connection attempt.
    Refuse {
        cid: u64,
        reason: RefuseReason,
        version: u8,
        detail: &'a str,
    },
}

impl<'a> Packet<'a> {
    /// Decodes one datagram. Refuses a version other than [`VERSION`] with
    /// [`DecodeError::UnsupportedVersion`], after which [`peek_header`] still
    /// reads the invariant header.
    pub(crate) fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let (version, kind, cid) = peek_header(datagram)?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let mut body = Reader::new(&datagram[HEADER_LEN..]);
        Ok(match kind {
            PacketType::Initial => {
                let hello = Hello {
                    schema_hash: body.u64()?,
                    max_data: body.varint()?,
                    max_message: body.varint()?,
                    cookie: body.blob(MAX_COOKIE_LEN, "cookie")?,
                };
                Self::Initial { cid, hello }
            }
            PacketType::Retry => Self::Retry {
                cid,
                cookie: body.blob(MAX_COOKIE_LEN, "cookie")?,
            },
            PacketType::Data => Self::Data {
                cid,
                number: body.varint()?,
                frames: body.rest(),
            },
            PacketType::Reset => Self::Reset { cid },
            PacketType::Refuse => {
                let reason = RefuseReason::from_u8(body.u8()?)?;
                let version = body.u8()?;
                let detail = std::str::from_utf8(body.blob(MAX_REASON_LEN, "refusal detail")?)
                    .map_err(|_| DecodeError::NotUtf8("refusal detail"))?;
                Self::Refuse {
                    cid,
                    reason,
                    version,
                    detail,
                }
            }
        })
    }
}

/// Appends the checksum (CRC-32) over the packet that starts at `start`.
/// Every packet ends with one: the network's own checksums are weak or
/// absent, and a corrupted fragment must never be delivered.
pub(crate) fn seal(buf: &mut Vec<u8>, start: usize) {
    let checksum = crc32fast::hash(&buf[start..]);
    buf.extend_from_slice(&checksum.to_be_bytes());
}

/// Checks a datagram's checksum and returns it without the checksum.
pub(crate) fn unseal(datagram: &[u8]) -> Result<&[u8], DecodeError> {
    let split = datagram
        .len()
        .checked_sub(CHECKSUM_LEN)
        .ok_or(DecodeError::Truncated)?;
    let (packet, trailer) = datagram.split_at(split);
    let mut expected = [0; CHECKSUM_LEN];
    expected.copy_from_slice(trailer);
    if crc32fast::hash(packet) != u32::from_be_bytes(expected) {
        return Err(DecodeError::Checksum);
    }
    Ok(packet)
}

/// Reads the invariant header: version, packet type and connection id.
pub(crate) fn peek_header(datagram: &[u8]) -> Result<(u8, PacketType, u64), DecodeError> {
    let mut header = Reader::new(datagram);
    let version = header.u8()?;
    let kind = PacketType::from_u8(header.u8()?)?;
    let cid = header.u64()?;
    Ok((version, kind, cid))
}

/// Writes the invariant header.
pub(crate) fn put_header(buf: &mut Vec<u8>, kind: PacketType, cid: u64) {
    buf.push(VERSION);
    buf.push(kind as u8);
    buf.put_u64(cid);
}

/// Writes a client's `Initial`, padded to [`MIN_INITIAL_SIZE`].
pub(crate) fn encode_initial(buf: &mut Vec<u8>, cid: u64, hello: &Hello<'_>) {
    let start = buf.len();
    put_header(buf, PacketType::Initial, cid);
    buf.put_u64(hello.schema_hash);
    buf.put_varint(hello.max_data);
    buf.put_varint(hello.max_message);
    buf.put_blob(hello.cookie);
    let padded = start + MIN_INITIAL_SIZE - CHECKSUM_LEN;
    if buf.len() < padded {
        buf.resize(padded, 0);
    }
}

/// Writes a server's `Retry`.
pub(crate) fn encode_retry(buf: &mut Vec<u8>, cid: u64, cookie: &[u8]) {
    put_header(buf, PacketType::Retry, cid);
    buf.put_blob(cookie);
}

/// Writes the start of a `Data` packet; frames follow.
pub(crate) fn encode_data_header(buf: &mut Vec<u8>, cid: u64, number: u64) {
    put_header(buf, PacketType::Data, cid);
    buf.put_varint(number);
}

/// Writes a `Reset` for a connection id this endpoint does not hold.
pub(crate) fn encode_reset(buf: &mut Vec<u8>, cid: u64) {
    put_header(buf, PacketType::Reset, cid);
}

/// Writes a `Refuse`.
pub(crate) fn encode_refuse(buf: &mut Vec<u8>, cid: u64, reason: RefuseReason, detail: &str) {
    put_header(buf, PacketType::Refuse, cid);
    buf.push(reason as u8);
    buf.push(VERSION);
    let detail = truncate_utf8(detail, MAX_REASON_LEN);
    buf.put_blob(detail.as_bytes());
}

/// The longest prefix of `text` within `max` bytes that ends on a character
/// boundary.
pub(crate) fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_packet_type_round_trips() {
        let mut buf = Vec::new();
        let hello = Hello {
            schema_hash: 0xfeed,
            max_data: 1 << 20,
            max_message: 1 << 16,
            cookie: b"cookie",
        };
        encode_initial(&mut buf, 42, &hello);
        seal(&mut buf, 0);
        assert_eq!(buf.len(), MIN_INITIAL_SIZE);
        assert_eq!(
            unseal(&buf).map(<[u8]>::len),
            Ok(MIN_INITIAL_SIZE - CHECKSUM_LEN)
        );
        buf.truncate(MIN_INITIAL_SIZE - CHECKSUM_LEN);
        assert_eq!(Packet::decode(&buf), Ok(Packet::Initial { cid: 42, hello }));

        buf.clear();
        encode_retry(&mut buf, 42, b"abc");
        assert_eq!(
            Packet::decode(&buf),
            Ok(Packet::Retry {
                cid: 42,
                cookie: b"abc"
            })
        );

        buf.clear();
        encode_data_header(&mut buf, 7, 1 << 33);
        buf.extend_from_slice(&[1, 1]);
        assert_eq!(
            Packet::decode(&buf),
            Ok(Packet::Data {
                cid: 7,
                number: 1 << 33,
                frames: &[1, 1]
            })
        );

        buf.clear();
        encode_reset(&mut buf, 9);
        assert_eq!(Packet::decode(&buf), Ok(Packet::Reset { cid: 9 }));

        buf.clear();
        encode_refuse(&mut buf, 9, RefuseReason::Schema, "schema differs");
        assert_eq!(
            Packet::decode(&buf),
            Ok(Packet::Refuse {
                cid: 9,
                reason: RefuseReason::Schema,
                version: VERSION,
                detail: "schema differs"
            })
        );
    }

    #[test]
    fn another_version_is_refused_by_name_and_its_header_still_reads() {
        let mut buf = Vec::new();
        encode_reset(&mut buf, 5);
        buf[0] = 9;
        assert_eq!(
            Packet::decode(&buf),
            Err(DecodeError::UnsupportedVersion(9))
        );
        assert_eq!(peek_header(&buf), Ok((9, PacketType::Reset, 5)));
    }

    #[test]
    fn every_prefix_of_a_packet_fails_cleanly() {
        let mut buf = Vec::new();
        encode_refuse(&mut buf, 9, RefuseReason::Full, "full");
        for cut in 0..buf.len() {
            assert!(Packet::decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut buf = Vec::new();
        encode_reset(&mut buf, 5);
        seal(&mut buf, 0);
        assert!(unseal(&buf).is_ok());
        buf[3] ^= 0x10;
        assert_eq!(unseal(&buf), Err(DecodeError::Checksum));
        assert_eq!(unseal(&[1, 2]), Err(DecodeError::Truncated));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
    }
}
