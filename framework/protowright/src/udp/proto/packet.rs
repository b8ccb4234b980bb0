//! Packets: the invariant header (version, type, connection id) and the
//! bodies of the six packet types.
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
//!
//! `Initial`, `Retry`, `Reset` and `Refuse` end in a CRC-32. After the
//! handshake, `Data` packets (and the server's first packets, `Handshake`,
//! which carry its handshake answer in front) are protected instead:
//!
//! ```text
//! | header (10) | [answer blob] | packet number | ciphertext | tag (16) |
//! ```
//! with everything before the ciphertext as associated data. A connection
//! that runs in plaintext (a debugging flag) ends its `Data` packets in a
//! CRC-32 like the others.

use super::DecodeError;
use super::coding::{Put, Reader};

/// The protocol version this build speaks.
pub const VERSION: u8 = 2;

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

/// The longest handshake message an `Initial` or `Handshake` may carry.
pub(crate) const MAX_HANDSHAKE_LEN: usize = 512;

/// Bytes of the first handshake message a `Retry` echoes, binding it to
/// the attempt it answers.
pub(crate) const ECHO_LEN: usize = 8;

/// The `security` byte of an `Initial` that asks for a plaintext
/// connection (the debugging flag); other values name a Noise pattern.
pub(crate) const SECURITY_PLAINTEXT: u8 = 0;

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
    Handshake = 5,
}

impl PacketType {
    fn from_u8(value: u8) -> Result<Self, DecodeError> {
        Ok(match value {
            0 => Self::Initial,
            1 => Self::Retry,
            2 => Self::Data,
            3 => Self::Reset,
            4 => Self::Refuse,
            5 => Self::Handshake,
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
    /// The handshake failed or the server's security rules turned the
    /// client away (plaintext asked of a server that requires encryption,
    /// a missing or wrong pre-shared key, pinned key or connect token).
    Security = 6,
}

impl RefuseReason {
    fn from_u8(value: u8) -> Result<Self, DecodeError> {
        Ok(match value {
            1 => Self::Version,
            2 => Self::Schema,
            3 => Self::Full,
            4 => Self::ShuttingDown,
            5 => Self::NotListening,
            6 => Self::Security,
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
    /// [`SECURITY_PLAINTEXT`] or the Noise pattern of `handshake`.
    pub(crate) security: u8,
    /// The AEAD the client asks for (ignored in plaintext).
    pub(crate) cipher: u8,
    /// Packet numbers between key updates, which both sides then use.
    pub(crate) key_update: u64,
    /// The client's first handshake message (empty in plaintext).
    pub(crate) handshake: &'a [u8],
}

impl Hello<'_> {
    /// The bytes both sides feed the handshake as its prologue: every
    /// setting the client offers in clear, so none can be changed in
    /// flight without the handshake failing.
    pub(crate) fn prologue(&self, cid: u64) -> Vec<u8> {
        let mut prologue = b"protowright v1".to_vec();
        prologue.put_u64(cid);
        prologue.put_u64(self.schema_hash);
        prologue.put_varint(self.max_data);
        prologue.put_varint(self.max_message);
        prologue.push(self.security);
        prologue.push(self.cipher);
        prologue.put_varint(self.key_update);
        prologue
    }

    /// What a cookie and a `Retry` are bound to: the start of the first
    /// handshake message (the client's fresh ephemeral key).
    pub(crate) fn attempt(&self) -> &[u8] {
        &self.handshake[..self.handshake.len().min(32)]
    }
}

/// A decoded packet, borrowing from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    /// A client's connection attempt; `cid` is the client's own id.
    Initial { cid: u64, hello: Hello<'a> },
    /// A server's stateless answer to an `Initial` without a valid cookie;
    /// `echo` repeats the start of the client's handshake message.
    Retry {
        cid: u64,
        cookie: &'a [u8],
        echo: &'a [u8],
    },
    /// Frames of an established connection.
    Data {
        cid: u64,
        number: u64,
        frames: &'a [u8],
    },
    /// "I hold no connection with id `cid`": the sender restarted or forgot
    /// it. `token` proves the sender held it.
    Reset { cid: u64, token: &'a [u8] },
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
                    security: body.u8()?,
                    cipher: body.u8()?,
                    key_update: body.varint()?,
                    handshake: body.blob(MAX_HANDSHAKE_LEN, "handshake")?,
                };
                Self::Initial { cid, hello }
            }
            PacketType::Retry => Self::Retry {
                cid,
                cookie: body.blob(MAX_COOKIE_LEN, "cookie")?,
                echo: body.blob(ECHO_LEN, "echo")?,
            },
            PacketType::Data => Self::Data {
                cid,
                number: body.varint()?,
                frames: body.rest(),
            },
            PacketType::Handshake => {
                body.blob(MAX_HANDSHAKE_LEN, "handshake")?;
                Self::Data {
                    cid,
                    number: body.varint()?,
                    frames: body.rest(),
                }
            }
            PacketType::Reset => Self::Reset {
                cid,
                token: body.rest(),
            },
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

/// The clear part of a protected packet (`Data` or `Handshake` under
/// encryption).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProtectedHeader<'a> {
    /// The receiver's connection id.
    pub(crate) cid: u64,
    /// The server's handshake answer, in a `Handshake` packet.
    pub(crate) answer: Option<&'a [u8]>,
    /// The packet number.
    pub(crate) number: u64,
    /// Bytes before the ciphertext: the associated data.
    pub(crate) len: usize,
}

/// Reads the clear part of a protected packet; the ciphertext and tag
/// follow at `len`.
pub(crate) fn decode_protected(datagram: &[u8]) -> Result<ProtectedHeader<'_>, DecodeError> {
    let (version, kind, cid) = peek_header(datagram)?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let mut body = Reader::new(&datagram[HEADER_LEN..]);
    let answer = match kind {
        PacketType::Data => None,
        PacketType::Handshake => Some(body.blob(MAX_HANDSHAKE_LEN, "handshake")?),
        _ => return Err(DecodeError::OutOfRange("protected packet type")),
    };
    let number = body.varint()?;
    Ok(ProtectedHeader {
        cid,
        answer,
        number,
        len: datagram.len() - body.remaining(),
    })
}

/// Writes the clear part of a protected packet: a `Handshake` when
/// `answer` is given, else a `Data`.
pub(crate) fn encode_protected_header(
    buf: &mut Vec<u8>,
    cid: u64,
    answer: Option<&[u8]>,
    number: u64,
) {
    match answer {
        Some(answer) => {
            put_header(buf, PacketType::Handshake, cid);
            buf.put_blob(answer);
        }
        None => put_header(buf, PacketType::Data, cid),
    }
    buf.put_varint(number);
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
    buf.push(hello.security);
    buf.push(hello.cipher);
    buf.put_varint(hello.key_update);
    buf.put_blob(hello.handshake);
    let padded = start + MIN_INITIAL_SIZE - CHECKSUM_LEN;
    if buf.len() < padded {
        buf.resize(padded, 0);
    }
}

/// Writes a server's `Retry`, echoing the start of the client's handshake
/// message.
pub(crate) fn encode_retry(buf: &mut Vec<u8>, cid: u64, cookie: &[u8], attempt: &[u8]) {
    put_header(buf, PacketType::Retry, cid);
    buf.put_blob(cookie);
    buf.put_blob(&attempt[..attempt.len().min(ECHO_LEN)]);
}

/// Writes the start of a `Data` packet; frames follow.
pub(crate) fn encode_data_header(buf: &mut Vec<u8>, cid: u64, number: u64) {
    put_header(buf, PacketType::Data, cid);
    buf.put_varint(number);
}

/// Writes a `Reset` for a connection id this endpoint does not hold, with
/// the token that proves it held it.
pub(crate) fn encode_reset(buf: &mut Vec<u8>, cid: u64, token: &[u8]) {
    put_header(buf, PacketType::Reset, cid);
    buf.extend_from_slice(token);
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
            security: 1,
            cipher: 2,
            key_update: 1 << 20,
            handshake: b"handshake",
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
        encode_retry(&mut buf, 42, b"abc", b"attempt-of-client");
        assert_eq!(
            Packet::decode(&buf),
            Ok(Packet::Retry {
                cid: 42,
                cookie: b"abc",
                echo: b"attempt-"
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
        encode_reset(&mut buf, 9, b"token");
        assert_eq!(
            Packet::decode(&buf),
            Ok(Packet::Reset {
                cid: 9,
                token: b"token"
            })
        );

        buf.clear();
        encode_protected_header(&mut buf, 7, Some(b"answer"), 300);
        let len = buf.len();
        buf.extend_from_slice(b"sealed");
        assert_eq!(
            decode_protected(&buf),
            Ok(ProtectedHeader {
                cid: 7,
                answer: Some(b"answer"),
                number: 300,
                len
            })
        );
        for cut in 0..len {
            assert!(decode_protected(&buf[..cut]).is_err(), "cut at {cut}");
        }

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
        encode_reset(&mut buf, 5, &[]);
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
        encode_reset(&mut buf, 5, &[]);
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
