//! Envelopes: building the ones a session sends, and decoding the ones it
//! receives.
//!
//! Every message a session reads is an envelope, so decoding it is on the
//! hottest path. This decoder parses the fields in place and turns the
//! frame itself into the body (narrowing a `Bytes` costs no reference
//! count), which profiles showed cheaper than prost's generic decoding. It
//! handles the fields as protowright writes them; anything else (unknown
//! fields, other wire types) is left to prost, so the result is always
//! what prost would decode.

use std::ops::Range;

use bytes::{Buf, Bytes};
use prost::{DecodeError, Message};

use super::Status as CallStatus;
use crate::v1::{Envelope, Kind, Status};

/// The response envelope for `call_id`.
pub(super) fn response(call_id: u64, outcome: Result<Bytes, CallStatus>) -> Envelope {
    match outcome {
        Ok(body) => Envelope {
            kind: Kind::Response as i32,
            call_id,
            body,
            ..Envelope::default()
        },
        Err(status) => Envelope {
            kind: Kind::Response as i32,
            call_id,
            status: Some(status.to_wire()),
            ..Envelope::default()
        },
    }
}

/// A one-way call of `method`.
pub(super) fn one_way(method: u32, body: Bytes) -> Envelope {
    Envelope {
        kind: Kind::OneWay as i32,
        method,
        body,
        ..Envelope::default()
    }
}

/// A GOAWAY saying why: no new calls on this connection.
pub(super) fn go_away(status: &CallStatus) -> Envelope {
    Envelope {
        kind: Kind::Goaway as i32,
        status: Some(status.to_wire()),
        ..Envelope::default()
    }
}

/// An envelope of `kind` that carries only a call id: PING (call id 0 for
/// a heartbeat), PONG, CANCEL.
pub(super) fn control(kind: Kind, call_id: u64) -> Envelope {
    Envelope {
        kind: kind as i32,
        call_id,
        ..Envelope::default()
    }
}

/// Whether an envelope of this kind is the application's traffic (calls,
/// responses, one-way and protocol messages) rather than heartbeats and
/// GOAWAY; only traffic keeps the idle timer from firing.
pub(super) fn is_traffic(kind: i32) -> bool {
    matches!(
        Kind::try_from(kind),
        Ok(Kind::Request | Kind::Response | Kind::OneWay | Kind::Cancel | Kind::Message)
    )
}

/// The body of a protocol message, when `frame` is a MESSAGE envelope as
/// protowright writes it (kind, then the body, nothing else); otherwise
/// the frame back, for [`decode_envelope`]. Protocol messages are the
/// bulk of what many sessions read, and this takes a few byte compares
/// where a full decode builds a whole envelope.
pub(super) fn message_body(mut frame: Bytes) -> Result<Bytes, Bytes> {
    const HEAD: [u8; 3] = [1 << 3, Kind::Message as u8, (4 << 3) | 2];
    if frame[..] == HEAD[..2] {
        return Ok(Bytes::new());
    }
    if frame.len() < 4 || frame[..3] != HEAD {
        return Err(frame);
    }
    let mut cursor = &frame[3..];
    match length(&mut cursor) {
        Some(len) if len == cursor.len() => {
            let start = frame.len() - len;
            frame.advance(start);
            Ok(frame)
        }
        _ => Err(frame),
    }
}

/// Decodes one envelope from a whole frame.
pub(super) fn decode_envelope(mut frame: Bytes) -> Result<Envelope, DecodeError> {
    let Some((mut envelope, body)) = parse(&frame) else {
        return Envelope::decode(frame);
    };
    if let Some(range) = body {
        frame.truncate(range.end);
        frame.advance(range.start);
        envelope.body = frame;
    }
    Ok(envelope)
}

/// Parses the fields protowright writes, noting where the body lies.
/// `None` means "not the usual form": prost then decodes the frame (and
/// reports any error exactly as it would).
fn parse(frame: &[u8]) -> Option<(Envelope, Option<Range<usize>>)> {
    let mut envelope = Envelope::default();
    let mut body = None;
    let mut cursor = frame;
    while cursor.has_remaining() {
        let key = varint(&mut cursor)?;
        match (key >> 3, key & 7) {
            (1, 0) => envelope.kind = varint(&mut cursor)? as i32,
            (2, 0) => envelope.call_id = varint(&mut cursor)?,
            (3, 0) => envelope.method = varint(&mut cursor)? as u32,
            (6, 0) => envelope.timeout_micros = varint(&mut cursor)?,
            (4, 2) => {
                let len = length(&mut cursor)?;
                let start = frame.len() - cursor.len();
                body = Some(start..start + len);
                cursor.advance(len);
            }
            (5, 2) => {
                let len = length(&mut cursor)?;
                let status = envelope.status.get_or_insert_with(Status::default);
                status.merge(&cursor[..len]).ok()?;
                cursor.advance(len);
            }
            _ => return None,
        }
    }
    Some((envelope, body))
}

fn varint(cursor: &mut &[u8]) -> Option<u64> {
    prost::encoding::decode_varint(cursor).ok()
}

/// A length prefix, if that many bytes follow.
fn length(cursor: &mut &[u8]) -> Option<usize> {
    let len = usize::try_from(varint(cursor)?).ok()?;
    (len <= cursor.len()).then_some(len)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn envelopes() -> impl Strategy<Value = Envelope> {
        (
            0i32..8,
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..100),
            proptest::option::of((0i32..20, ".{0,20}")),
            any::<u64>(),
        )
            .prop_map(
                |(kind, call_id, method, body, status, timeout_micros)| Envelope {
                    kind,
                    call_id,
                    method,
                    body: body.into(),
                    status: status.map(|(code, message)| Status { code, message }),
                    timeout_micros,
                },
            )
    }

    proptest! {
        #[test]
        fn decodes_every_envelope_as_prost_does(envelope in envelopes()) {
            let wire = Bytes::from(envelope.encode_to_vec());
            prop_assert_eq!(decode_envelope(wire).unwrap(), envelope);
        }

        #[test]
        fn agrees_with_prost_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let ours = decode_envelope(Bytes::from(bytes.clone()));
            let prosts = Envelope::decode(&bytes[..]);
            prop_assert_eq!(ours.is_ok(), prosts.is_ok(), "{:?} vs {:?}", ours, prosts);
            if let (Ok(ours), Ok(prosts)) = (ours, prosts) {
                prop_assert_eq!(ours, prosts);
            }
        }
    }

    proptest! {
        #[test]
        fn the_message_fast_path_agrees_with_the_full_decode(envelope in envelopes()) {
            let wire = Bytes::from(envelope.encode_to_vec());
            if let Ok(body) = message_body(wire.clone()) {
                let full = decode_envelope(wire).unwrap();
                prop_assert_eq!(full.kind, Kind::Message as i32);
                prop_assert_eq!(&full.body, &body);
                prop_assert_eq!((full.call_id, full.method, full.timeout_micros), (0, 0, 0));
                prop_assert!(full.status.is_none());
            } else {
                let plain_message = Envelope {
                    kind: Kind::Message as i32,
                    body: envelope.body.clone(),
                    ..Envelope::default()
                };
                prop_assert_ne!(envelope, plain_message);
            }
        }
    }

    #[test]
    fn unknown_fields_from_a_newer_peer_are_skipped() {
        let mut wire = Envelope {
            kind: 1,
            call_id: 3,
            body: Bytes::from_static(b"x"),
            ..Envelope::default()
        }
        .encode_to_vec();
        // Field 15, varint 7: not in this build's schema.
        wire.extend_from_slice(&[0x78, 0x07]);
        let decoded = decode_envelope(Bytes::from(wire)).unwrap();
        assert_eq!(
            (decoded.kind, decoded.call_id, &decoded.body[..]),
            (1, 3, &b"x"[..])
        );
    }

    #[test]
    fn repeated_fields_keep_the_last_value_like_prost() {
        let wire = vec![0x10, 0x01, 0x22, 0x01, b'a', 0x10, 0x02, 0x22, 0x01, b'b'];
        assert_eq!(
            decode_envelope(Bytes::from(wire.clone())).unwrap(),
            Envelope::decode(&wire[..]).unwrap()
        );
    }
}
