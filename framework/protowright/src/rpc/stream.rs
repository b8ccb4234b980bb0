//! A byte stream as a session's message link: length-delimited envelopes.
//!
//! The TCP transport's link (TLS too), the in-memory harness's pipe's, and
//! that of any `AsyncRead + AsyncWrite` given to
//! [`Session::spawn`](super::Session::spawn). Reading cuts whole frames
//! out of a growing buffer with [`Delimited`], which refuses an oversized
//! length before reserving anything; writing passes the session's batches
//! straight to the stream, so many small envelopes cost one system call.
//!
//! What a peer can make the reader hold is bounded by what it sent:
//! - the buffer grows as bytes arrive (at most about twice what is
//!   buffered, plus `read_buffer`), never to the length a prefix announced;
//! - a frame must arrive whole within `frame_timeout` of its first byte,
//!   counting only the time spent waiting for the peer, not time this side
//!   spent not reading (its queues full);
//! - a frame smaller than `read_buffer` is copied out of the buffer, so a
//!   small message waiting in a queue never keeps a whole read buffer
//!   alive. Runs of frames up to 512 bytes that queues hold (messages,
//!   one-way messages, requests) share an arena sized to the run, at most
//!   4 KiB and holding nothing else: a held frame keeps at most its run
//!   alive, and the queues' bounds in messages (1,024 each by default)
//!   bound the runs.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::Instant;

use super::Config;
use super::link::{Link, LinkReader, LinkWriter, Meter};
use crate::codec::Delimited;
use crate::error::ConnectionError;
use crate::v1::Kind;

/// The room the first read gets.
const FIRST_READ: usize = 512;

/// The size of the arenas small frames are copied into.
const ARENA: usize = 4096;

/// Frames up to this size go to an arena.
const ARENA_FRAME: usize = 512;

#[derive(Debug)]
pub(crate) struct StreamLink<IO> {
    io: IO,
    peer: String,
    max_frame: usize,
    read_buffer: usize,
    frame_timeout: Option<Duration>,
}

impl<IO> StreamLink<IO> {
    /// `io` to `peer`, with the frame limit, frame timeout and read buffer
    /// size of `config`.
    pub(crate) fn new(io: IO, peer: String, config: &Config) -> Self {
        Self {
            io,
            peer,
            max_frame: config.max_frame,
            read_buffer: config.read_buffer,
            frame_timeout: config.frame_timeout,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Send + 'static> Link for StreamLink<IO> {
    type Reader = StreamReader<ReadHalf<IO>>;
    type Writer = StreamWriter<WriteHalf<IO>>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        let (reader, writer) = tokio::io::split(self.io);
        let reader = StreamReader {
            reader,
            codec: Delimited::new(self.max_frame),
            buf: BytesMut::new(),
            read_buffer: self.read_buffer,
            reserve: FIRST_READ.min(self.read_buffer),
            frame_timeout: self.frame_timeout,
            arena: BytesMut::new(),
            waited: Duration::ZERO,
            peer: self.peer.clone(),
        };
        let writer = StreamWriter {
            writer,
            peer: self.peer,
        };
        (reader, writer)
    }
}

/// The reading half: frames cut out of a buffer.
#[derive(Debug)]
pub(crate) struct StreamReader<R> {
    reader: R,
    codec: Delimited,
    buf: BytesMut,
    read_buffer: usize,
    /// How much room a read gets: from [`FIRST_READ`], doubled by every
    /// read that fills it, up to `read_buffer`. An idle connection then
    /// holds a small buffer, a busy one reads `read_buffer` at a time.
    reserve: usize,
    frame_timeout: Option<Duration>,
    /// Where small frames are copied to (see `take_frame`).
    arena: BytesMut,
    /// How long reads have waited for the peer since the partial frame in
    /// `buf` began (zero between frames).
    waited: Duration,
    peer: String,
}

impl<R: AsyncRead + Unpin + Send + 'static> LinkReader for StreamReader<R> {
    async fn read(
        &mut self,
        frames: &mut Vec<Bytes>,
        meter: &Meter<'_>,
    ) -> Result<bool, ConnectionError> {
        loop {
            self.cut_frames(frames)?;
            meter.on_reserved(self.buf.capacity());
            if !frames.is_empty() {
                return Ok(true);
            }
            let spare = self.buf.capacity() - self.buf.len();
            if spare < self.reserve / 4 {
                // Grows with what arrived (doubling at most), never with
                // what a prefix announced.
                self.buf.reserve(self.reserve);
            }
            let spare = self.buf.capacity() - self.buf.len();
            let read = self.read_more().await?;
            if read == spare {
                // The peer sends faster than this reads: read more at a time.
                self.reserve = (self.reserve * 2).min(self.read_buffer);
            }
            if read == 0 {
                self.codec
                    .decode_eof(&self.buf)
                    .map_err(|source| ConnectionError::Frame {
                        peer: self.peer.clone(),
                        source,
                    })?;
                return Ok(false);
            }
            meter.on_read(read);
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> StreamReader<R> {
    /// Moves every whole frame in the buffer to `frames`.
    fn cut_frames(&mut self, frames: &mut Vec<Bytes>) -> Result<(), ConnectionError> {
        while let Some(len) =
            self.codec
                .next_len(&mut self.buf)
                .map_err(|source| ConnectionError::Frame {
                    peer: self.peer.clone(),
                    source,
                })?
        {
            // What follows is a new frame, whose first byte came just now.
            self.waited = Duration::ZERO;
            frames.push(self.take_frame(len));
        }
        // The frames own the arena now: an idle connection holds none.
        self.arena = BytesMut::new();
        Ok(())
    }

    /// Takes the frame of `len` bytes at the front of the buffer.
    ///
    /// A small frame shared with the buffer would keep all of it alive
    /// while it waits in a queue, so small frames are copied out. Runs of
    /// small frames that queues hold (protocol messages, one-way messages,
    /// requests) share an arena sized to exactly that run, at most
    /// [`ARENA`] bytes: a stream of small messages costs one allocation per
    /// run rather than one or two per message, as profiles showed, and an
    /// arena holds nothing a queue does not (no heartbeat, reply or
    /// padding the reader drops at once). Other frames get allocations of
    /// their own; a frame as large as the read buffer is split off without
    /// a copy.
    fn take_frame(&mut self, len: usize) -> Bytes {
        if len <= ARENA_FRAME && is_queued_kind(&self.buf[..len]) {
            if self.arena.capacity() - self.arena.len() < len {
                let run = len + queued_run_after(&self.buf[len..], ARENA - len);
                self.arena = BytesMut::with_capacity(run);
            }
            self.arena.extend_from_slice(&self.buf[..len]);
            self.buf.advance(len);
            return self.arena.split().freeze();
        }
        if len < self.read_buffer {
            let frame = Bytes::copy_from_slice(&self.buf[..len]);
            self.buf.advance(len);
            return frame;
        }
        self.buf.split_to(len).freeze()
    }

    /// Whether part of a frame is buffered.
    fn is_inside_frame(&self) -> bool {
        !self.buf.is_empty() || self.codec.announced().is_some()
    }

    /// Reads once into the buffer; inside a frame, within what is left of
    /// the frame timeout.
    async fn read_more(&mut self) -> Result<usize, ConnectionError> {
        let limit = self.frame_timeout.filter(|_| self.is_inside_frame());
        let mut read = pin!(self.reader.read_buf(&mut self.buf));
        // Bytes already waiting need no timer: profiles of streams of small
        // messages showed a timer armed and cancelled on nearly every read.
        let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
        let read = match (limit, first) {
            (_, Poll::Ready(read)) => read,
            (None, Poll::Pending) => read.await,
            (Some(limit), Poll::Pending) => {
                let started = Instant::now();
                let left = limit.saturating_sub(self.waited);
                // Boxed, so the timer takes no room in an idle task.
                let read = Box::pin(tokio::time::timeout(left, read)).await;
                self.waited += started.elapsed();
                match read {
                    Ok(read) => read,
                    Err(_) => {
                        return Err(ConnectionError::FrameTimeout {
                            peer: self.peer.clone(),
                            limit,
                            received: self.buf.len(),
                            expected: self.codec.announced(),
                        });
                    }
                }
            }
        };
        read.map_err(|source| ConnectionError::io(&self.peer, source))
    }
}

/// Whether `frame` is an envelope a queue holds once read: a protocol
/// message, a one-way message or a request (protowright writes the kind
/// first). Anything else is not worth sharing an arena with them.
fn is_queued_kind(frame: &[u8]) -> bool {
    const KIND_KEY: u8 = 1 << 3;
    matches!(frame, [KIND_KEY, kind, ..] if matches!(Kind::try_from(i32::from(*kind)), Ok(Kind::Message | Kind::OneWay | Kind::Request)))
}

/// The bytes of the complete small frames of queued kinds that follow at
/// the front of `rest` (length prefixes not counted), up to `limit`.
fn queued_run_after(mut rest: &[u8], limit: usize) -> usize {
    let mut run = 0;
    while let Ok(len) = prost::encoding::decode_varint(&mut rest) {
        let Ok(len) = usize::try_from(len) else {
            break;
        };
        if len > ARENA_FRAME
            || len > rest.len()
            || run + len > limit
            || !is_queued_kind(&rest[..len])
        {
            break;
        }
        run += len;
        rest = &rest[len..];
    }
    run
}

/// The writing half: batches written as they are.
#[derive(Debug)]
pub(crate) struct StreamWriter<W> {
    writer: W,
    peer: String,
}

impl<W: AsyncWrite + Unpin + Send + 'static> LinkWriter for StreamWriter<W> {
    async fn write(&mut self, batch: &Bytes) -> Result<usize, ConnectionError> {
        match self.writer.write(batch).await {
            Ok(0) => Err(ConnectionError::io(
                &self.peer,
                std::io::Error::from(std::io::ErrorKind::WriteZero),
            )),
            Ok(written) => Ok(written),
            Err(source) => Err(ConnectionError::io(&self.peer, source)),
        }
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        self.writer
            .flush()
            .await
            .map_err(|source| ConnectionError::io(&self.peer, source))
    }

    async fn shutdown(&mut self) -> Result<(), ConnectionError> {
        self.writer
            .shutdown()
            .await
            .map_err(|source| ConnectionError::io(&self.peer, source))
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use prost::Message;

    use super::*;
    use crate::v1::Envelope;

    fn frame(kind: Kind, body: usize) -> Vec<u8> {
        let envelope = Envelope {
            kind: kind as i32,
            call_id: 1,
            body: vec![7u8; body].into(),
            ..Envelope::default()
        };
        let mut framed = Vec::new();
        prost::encoding::encode_varint(envelope.encoded_len() as u64, &mut framed);
        framed.put_slice(&envelope.encode_to_vec());
        framed
    }

    fn envelope_len(framed: &[u8]) -> usize {
        let mut cursor = framed;
        let len = prost::encoding::decode_varint(&mut cursor).unwrap();
        usize::try_from(len).unwrap()
    }

    #[test]
    fn only_envelopes_a_queue_holds_share_an_arena() {
        for (kind, queued) in [
            (Kind::Message, true),
            (Kind::OneWay, true),
            (Kind::Request, true),
            (Kind::Response, false),
            (Kind::Ping, false),
            (Kind::Pong, false),
            (Kind::Goaway, false),
        ] {
            let framed = frame(kind, 10);
            let prefix = framed.len() - envelope_len(&framed);
            assert_eq!(is_queued_kind(&framed[prefix..]), queued, "{kind:?}");
        }
    }

    #[test]
    fn an_arena_covers_the_run_of_small_queued_frames_and_stops_at_anything_else() {
        let messages = [frame(Kind::Message, 10), frame(Kind::Request, 20)];
        let mut rest: Vec<u8> = messages.concat();
        rest.extend(frame(Kind::Ping, 0));
        rest.extend(frame(Kind::Message, 30));
        let run: usize = messages.iter().map(|m| envelope_len(m)).sum();
        assert_eq!(queued_run_after(&rest, ARENA), run, "stops at the ping");
        assert_eq!(
            queued_run_after(&rest, run - 1),
            envelope_len(&messages[0]),
            "within the limit"
        );
        let large = frame(Kind::Message, ARENA_FRAME + 1);
        assert_eq!(
            queued_run_after(&large, ARENA),
            0,
            "a large frame has its own allocation"
        );
        let partial = &rest[..5];
        assert_eq!(
            queued_run_after(partial, ARENA),
            0,
            "an incomplete frame is not counted"
        );
    }
}
