//! Frames inside a `Data` packet.
//!
//! | type | frame | fields |
//! | --- | --- | --- |
//! | 0x00 | padding | (the rest of the packet) |
//! | 0x01 | ping | |
//! | 0x02 | ack | largest, ack delay (µs), range count, first range length, then (gap, length) pairs going down |
//! | 0x03 | fragment | lane, channel, message sequence, message length, offset, data length, data |
//! | 0x04 | close | code, reason |
//! | 0x05 | welcome | server connection id, max data, max message, reset token |
//! | 0x06 | max data | the new flow-control limit |
//!
//! Fragments carry byte offsets rather than indices, so a message queued at
//! one datagram size can be resent at another.

use std::ops::Range;

use super::DecodeError;
use super::coding::{Put, Reader, VARINT_MAX, varint_len};
use super::crypto::RESET_TOKEN_LEN;
use super::packet::MAX_REASON_LEN;

/// The most ack ranges one ack frame carries.
pub(crate) const MAX_ACK_RANGES: usize = 64;

/// How a message travels: the four deliveries of the schema, plus the
/// connection's RPC session stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Lane {
    /// Exactly once, in order within its channel.
    ReliableOrdered = 0,
    /// Exactly once, any order.
    ReliableUnordered = 1,
    /// At most once, any order.
    Unreliable = 2,
    /// At most once, never older than the newest delivered on its channel.
    UnreliableSequenced = 3,
    /// The ordered byte stream an RPC session runs over.
    Session = 4,
}

impl Lane {
    fn from_u8(value: u8) -> Result<Self, DecodeError> {
        Ok(match value {
            0 => Self::ReliableOrdered,
            1 => Self::ReliableUnordered,
            2 => Self::Unreliable,
            3 => Self::UnreliableSequenced,
            4 => Self::Session,
            _ => return Err(DecodeError::OutOfRange("lane")),
        })
    }

    /// Whether lost fragments are resent.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Unreliable | Self::UnreliableSequenced)
    }
}

impl From<crate::Delivery> for Lane {
    fn from(delivery: crate::Delivery) -> Self {
        match delivery {
            crate::Delivery::ReliableOrdered => Self::ReliableOrdered,
            crate::Delivery::ReliableUnordered => Self::ReliableUnordered,
            crate::Delivery::Unreliable => Self::Unreliable,
            crate::Delivery::UnreliableSequenced => Self::UnreliableSequenced,
        }
    }
}

/// One piece of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fragment<'a> {
    pub(crate) lane: Lane,
    pub(crate) channel: u32,
    pub(crate) sequence: u64,
    /// The whole message's length.
    pub(crate) total: u64,
    pub(crate) offset: u64,
    pub(crate) data: &'a [u8],
}

impl Fragment<'_> {
    /// The bytes a fragment header takes, beyond its data.
    pub(crate) fn overhead(
        channel: u32,
        sequence: u64,
        total: u64,
        offset: u64,
        len: u64,
    ) -> usize {
        2 + varint_len(u64::from(channel))
            + varint_len(sequence)
            + varint_len(total)
            + varint_len(offset)
            + varint_len(len)
    }
}

/// An acknowledgement of received packet numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    /// How long the receiver held the largest packet before acking, in µs.
    pub(crate) delay_micros: u64,
    /// Acknowledged ranges, highest first.
    pub(crate) ranges: Vec<Range<u64>>,
}

impl Ack {
    pub(crate) fn largest(&self) -> u64 {
        self.ranges.first().map_or(0, |range| range.end - 1)
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    Padding,
    Ping,
    Ack(Ack),
    Fragment(Fragment<'a>),
    Close {
        code: u64,
        reason: &'a str,
    },
    Welcome {
        cid: u64,
        max_data: u64,
        max_message: u64,
        /// The token that authenticates the server's `Reset`s.
        reset_token: &'a [u8],
    },
    MaxData(u64),
}

impl Frame<'_> {
    /// Whether receiving this frame obliges the receiver to ack.
    pub(crate) fn is_ack_eliciting(&self) -> bool {
        !matches!(self, Self::Padding | Self::Ack(_) | Self::Close { .. })
    }
}

/// Decodes the frames of a `Data` packet one by one.
#[derive(Debug, Clone)]
pub(crate) struct Frames<'a> {
    reader: Reader<'a>,
}

impl<'a> Frames<'a> {
    pub(crate) fn new(payload: &'a [u8]) -> Self {
        Self {
            reader: Reader::new(payload),
        }
    }

    fn next_frame(&mut self) -> Result<Frame<'a>, DecodeError> {
        let reader = &mut self.reader;
        Ok(match reader.u8()? {
            0x00 => {
                reader.rest();
                Frame::Padding
            }
            0x01 => Frame::Ping,
            0x02 => Frame::Ack(decode_ack(reader)?),
            0x03 => {
                let lane = Lane::from_u8(reader.u8()?)?;
                let channel = reader.varint_at_most(u64::from(u32::MAX), "channel")? as u32;
                let sequence = reader.varint()?;
                let total = reader.varint()?;
                let offset = reader.varint()?;
                let len = reader.varint_at_most(reader.remaining() as u64, "fragment length")?;
                if offset.checked_add(len).is_none_or(|end| end > total) {
                    return Err(DecodeError::OutOfRange("fragment offset"));
                }
                Frame::Fragment(Fragment {
                    lane,
                    channel,
                    sequence,
                    total,
                    offset,
                    data: reader.take(len as usize)?,
                })
            }
            0x04 => {
                let code = reader.varint()?;
                let reason = std::str::from_utf8(reader.blob(MAX_REASON_LEN, "close reason")?)
                    .map_err(|_| DecodeError::NotUtf8("close reason"))?;
                Frame::Close { code, reason }
            }
            0x05 => Frame::Welcome {
                cid: reader.u64()?,
                max_data: reader.varint()?,
                max_message: reader.varint()?,
                reset_token: reader.take(RESET_TOKEN_LEN)?,
            },
            0x06 => Frame::MaxData(reader.varint()?),
            other => return Err(DecodeError::UnknownFrameType(other)),
        })
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        let frame = self.next_frame();
        if frame.is_err() {
            // One bad frame spoils the packet: stop here.
            self.reader.rest();
        }
        Some(frame)
    }
}

fn decode_ack(reader: &mut Reader<'_>) -> Result<Ack, DecodeError> {
    let largest = reader.varint()?;
    let delay_micros = reader.varint()?;
    let count = reader.varint_at_most(MAX_ACK_RANGES as u64 - 1, "ack range count")? as usize;
    let first = reader.varint()?;
    let mut end = largest
        .checked_add(1)
        .ok_or(DecodeError::OutOfRange("ack range"))?;
    let mut start = end
        .checked_sub(first + 1)
        .ok_or(DecodeError::OutOfRange("ack range"))?;
    let mut ranges = Vec::with_capacity(count + 1);
    ranges.push(start..end);
    for _ in 0..count {
        let gap = reader.varint()?;
        let len = reader.varint()?;
        end = start
            .checked_sub(gap + 1)
            .ok_or(DecodeError::OutOfRange("ack gap"))?;
        start = end
            .checked_sub(len + 1)
            .ok_or(DecodeError::OutOfRange("ack range"))?;
        ranges.push(start..end);
    }
    Ok(Ack {
        delay_micros,
        ranges,
    })
}

/// Writes a ping.
pub(crate) fn put_ping(buf: &mut Vec<u8>) {
    buf.push(0x01);
}

/// Writes an ack of `ranges` (highest first, disjoint and non-adjacent),
/// taking as many ranges as fit in `room` bytes and [`MAX_ACK_RANGES`].
/// Returns false, writing nothing, when not even the first range fits.
pub(crate) fn put_ack(
    buf: &mut Vec<u8>,
    mut ranges: impl Iterator<Item = Range<u64>>,
    delay_micros: u64,
    room: usize,
) -> bool {
    let Some(first) = ranges.next() else {
        return false;
    };
    let largest = first.end - 1;
    let delay = delay_micros.min(VARINT_MAX);
    let mut body = Vec::with_capacity(32);
    body.put_varint(first.end - first.start - 1);
    let mut count = 0u64;
    let mut previous_start = first.start;
    for range in ranges.take(MAX_ACK_RANGES - 1) {
        let gap = previous_start - range.end - 1;
        let len = range.end - range.start - 1;
        let needed = varint_len(gap) + varint_len(len);
        let fixed = 1 + varint_len(largest) + varint_len(delay) + varint_len(count + 1);
        if fixed + body.len() + needed > room {
            break;
        }
        body.put_varint(gap);
        body.put_varint(len);
        count += 1;
        previous_start = range.start;
    }
    let fixed = 1 + varint_len(largest) + varint_len(delay) + varint_len(count);
    if fixed + body.len() > room {
        return false;
    }
    buf.push(0x02);
    buf.put_varint(largest);
    buf.put_varint(delay);
    buf.put_varint(count);
    buf.extend_from_slice(&body);
    true
}

/// Writes a fragment.
pub(crate) fn put_fragment(buf: &mut Vec<u8>, fragment: &Fragment<'_>) {
    buf.push(0x03);
    buf.push(fragment.lane as u8);
    buf.put_varint(u64::from(fragment.channel));
    buf.put_varint(fragment.sequence);
    buf.put_varint(fragment.total);
    buf.put_varint(fragment.offset);
    buf.put_blob(fragment.data);
}

/// Writes a close.
pub(crate) fn put_close(buf: &mut Vec<u8>, code: u64, reason: &str) {
    buf.push(0x04);
    buf.put_varint(code);
    buf.put_blob(super::packet::truncate_utf8(reason, MAX_REASON_LEN).as_bytes());
}

/// Writes a welcome.
pub(crate) fn put_welcome(
    buf: &mut Vec<u8>,
    cid: u64,
    max_data: u64,
    max_message: u64,
    reset_token: &[u8; RESET_TOKEN_LEN],
) {
    buf.push(0x05);
    buf.put_u64(cid);
    buf.put_varint(max_data);
    buf.put_varint(max_message);
    buf.extend_from_slice(reset_token);
}

/// Bytes a welcome frame takes.
pub(crate) fn welcome_len(max_data: u64, max_message: u64) -> usize {
    1 + 8 + varint_len(max_data) + varint_len(max_message) + RESET_TOKEN_LEN
}

/// Writes a flow-control limit.
pub(crate) fn put_max_data(buf: &mut Vec<u8>, max_data: u64) {
    buf.push(0x06);
    buf.put_varint(max_data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Frame<'_>>, DecodeError> {
        Frames::new(bytes).collect()
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        put_ping(&mut buf);
        assert!(put_ack(
            &mut buf,
            [10..12, 4..8, 0..2].into_iter(),
            250,
            100
        ));
        let fragment = Fragment {
            lane: Lane::UnreliableSequenced,
            channel: 3,
            sequence: 99,
            total: 10,
            offset: 4,
            data: b"abcdef",
        };
        put_fragment(&mut buf, &fragment);
        put_close(&mut buf, 2, "bye");
        put_welcome(&mut buf, 77, 1000, 64, &[9; RESET_TOKEN_LEN]);
        put_max_data(&mut buf, 5000);
        buf.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            decode_all(&buf),
            Ok(vec![
                Frame::Ping,
                Frame::Ack(Ack {
                    delay_micros: 250,
                    ranges: vec![10..12, 4..8, 0..2]
                }),
                Frame::Fragment(fragment),
                Frame::Close {
                    code: 2,
                    reason: "bye"
                },
                Frame::Welcome {
                    cid: 77,
                    max_data: 1000,
                    max_message: 64,
                    reset_token: &[9; RESET_TOKEN_LEN]
                },
                Frame::MaxData(5000),
                Frame::Padding,
            ])
        );
    }

    #[test]
    fn a_fragment_past_its_message_end_is_refused() {
        let mut buf = Vec::new();
        put_fragment(
            &mut buf,
            &Fragment {
                lane: Lane::ReliableOrdered,
                channel: 0,
                sequence: 0,
                total: 3,
                offset: 0,
                data: b"abcd",
            },
        );
        assert_eq!(
            decode_all(&buf),
            Err(DecodeError::OutOfRange("fragment offset"))
        );
    }

    #[test]
    fn an_ack_reaching_below_zero_is_refused() {
        let mut buf = vec![0x02];
        buf.put_varint(3); // largest
        buf.put_varint(0); // delay
        buf.put_varint(0); // no extra ranges
        buf.put_varint(4); // first range of 5 packets: 3..=-1
        assert_eq!(decode_all(&buf), Err(DecodeError::OutOfRange("ack range")));
    }

    #[test]
    fn acks_that_do_not_fit_keep_the_highest_ranges() {
        let ranges: Vec<_> = (0..200u64).rev().map(|i| i * 10..i * 10 + 5).collect();
        let mut buf = Vec::new();
        assert!(put_ack(&mut buf, ranges.clone().into_iter(), 0, 40));
        assert!(buf.len() <= 40);
        let Ok(frames) = decode_all(&buf) else {
            panic!("undecodable ack")
        };
        let Frame::Ack(ack) = &frames[0] else {
            panic!("not an ack")
        };
        assert_eq!(ack.ranges[..], ranges[..ack.ranges.len()]);
        assert!(!put_ack(&mut Vec::new(), ranges.into_iter(), 0, 2));
    }

    #[test]
    fn unknown_frame_types_are_named() {
        assert_eq!(
            decode_all(&[0x7f]),
            Err(DecodeError::UnknownFrameType(0x7f))
        );
    }
}
