//! The length-delimited codec, pure over a buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use super::FrameError;

/// The default largest frame: 4 MiB.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// The longest varint a length prefix may use.
pub const MAX_VARINT_LEN: usize = 10;

/// Where the decoder is inside the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Waiting for a complete length prefix.
    Head,
    /// The prefix was read; waiting for this many body bytes.
    Data(usize),
}

/// Cuts varint-length-delimited frames out of a byte buffer and writes them.
///
/// Decoding is incremental: feed whatever arrived into a `BytesMut`, call
/// [`decode`](Self::decode) until it returns `Ok(None)`, then read more. The
/// codec keeps its place between calls, so a prefix or body may arrive in any
/// number of pieces.
#[derive(Debug, Clone)]
pub struct Delimited {
    max_frame: usize,
    state: DecodeState,
}

impl Default for Delimited {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl Delimited {
    /// A codec that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            state: DecodeState::Head,
        }
    }

    /// The largest frame body this codec accepts or writes, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The body length the current frame's prefix announced, while that
    /// body is still arriving; `None` between frames and while a prefix is.
    pub fn announced(&self) -> Option<usize> {
        match self.state {
            DecodeState::Head => None,
            DecodeState::Data(len) => Some(len),
        }
    }

    /// Takes the next complete frame body out of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame; the bytes
    /// stay in `buf` (or the parsed prefix stays in the codec) for the next
    /// call. Returns an error as soon as a prefix is malformed or announces
    /// more than the maximum. Never reserves room in `buf`: the caller
    /// grows it as bytes arrive, so memory follows what arrived, not what
    /// was announced.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(len) = self.next_len(buf)? else {
            return Ok(None);
        };
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// The length of the next frame once it is all in `buf`, its length
    /// prefix consumed (the frame is then `buf[..len]`, for the caller to
    /// take); `None` until then. [`decode`](Self::decode) is this plus
    /// splitting the frame off.
    pub fn next_len(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, FrameError> {
        let len = match self.state {
            DecodeState::Data(len) => len,
            DecodeState::Head => match self.decode_head(buf)? {
                Some(len) => len,
                None => return Ok(None),
            },
        };
        if buf.len() < len {
            // Nothing is reserved for the rest of the body: a peer that
            // announces a large frame and sends little of it costs what it
            // sent. The caller's buffer grows as the bytes arrive.
            self.state = DecodeState::Data(len);
            return Ok(None);
        }
        self.state = DecodeState::Head;
        Ok(Some(len))
    }

    /// Checks that a stream which ended left no partial frame behind.
    ///
    /// Call it when the reader returns end of stream; `Ok(())` means the
    /// stream ended cleanly on a frame boundary.
    pub fn decode_eof(&self, buf: &BytesMut) -> Result<(), FrameError> {
        match self.state {
            DecodeState::Data(len) => Err(FrameError::Truncated {
                missing: len.saturating_sub(buf.len()),
            }),
            DecodeState::Head if buf.is_empty() => Ok(()),
            DecodeState::Head => Err(FrameError::Truncated {
                missing: MAX_VARINT_LEN.saturating_sub(buf.len()).max(1),
            }),
        }
    }

    fn decode_head(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, FrameError> {
        let Some((len, prefix_len)) = read_varint(buf)? else {
            return Ok(None);
        };
        if len > self.max_frame as u64 {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        buf.advance(prefix_len);
        // `len <= max_frame`, which is a `usize`, so the cast cannot truncate.
        Ok(Some(len as usize))
    }

    /// Appends `message` to `dst` as one frame.
    ///
    /// Refuses a message whose encoding exceeds the maximum, leaving `dst`
    /// unchanged, so a peer with the same limit never receives a frame it
    /// would reject.
    pub fn encode<M: Message>(&self, message: &M, dst: &mut BytesMut) -> Result<(), FrameError> {
        let len = message.encoded_len();
        self.check_len(len)?;
        dst.reserve(prost::length_delimiter_len(len) + len);
        put_varint(dst, len as u64);
        message
            .encode(dst)
            .expect("BytesMut grows on demand, so encoding cannot run out of room");
        Ok(())
    }

    /// Appends an already encoded frame body to `dst`.
    pub fn encode_bytes(&self, body: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        self.check_len(body.len())?;
        dst.reserve(prost::length_delimiter_len(body.len()) + body.len());
        put_varint(dst, body.len() as u64);
        dst.put_slice(body);
        Ok(())
    }

    fn check_len(&self, len: usize) -> Result<(), FrameError> {
        if len > self.max_frame {
            return Err(FrameError::MessageTooLarge {
                len,
                max: self.max_frame,
            });
        }
        Ok(())
    }
}

/// Reads a varint from the front of `buf` without consuming it.
///
/// Returns the value and the number of bytes it took, `None` if `buf` ends
/// before the varint does.
fn read_varint(buf: &[u8]) -> Result<Option<(u64, usize)>, FrameError> {
    let mut value: u64 = 0;
    for (index, &byte) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may only carry the single top bit of a u64.
        if index == MAX_VARINT_LEN - 1 && byte > 1 {
            return Err(FrameError::BadLength {
                max_len: MAX_VARINT_LEN,
            });
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(Some((value, index + 1)));
        }
    }
    if buf.len() >= MAX_VARINT_LEN {
        return Err(FrameError::BadLength {
            max_len: MAX_VARINT_LEN,
        });
    }
    Ok(None)
}

fn put_varint(dst: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        dst.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    dst.put_u8(value as u8);
}

#[cfg(test)]
mod tests;
