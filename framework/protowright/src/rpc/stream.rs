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
//!   alive; frames up to 512 bytes share 4 KiB arenas, so a held one
//!   keeps at most 4 KiB alive, and the queues' bounds in messages (1,024
//!   each by default) bound that too.

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

/// A byte stream carrying length-delimited envelopes.
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

    /// Whether part of a frame is buffered.
    /// Takes the frame of `len` bytes at the front of the buffer.
    ///
    /// A small frame shared with the buffer would keep all of it alive
    /// while it waits in a queue, so small frames are copied out: the
    /// smallest into a shared arena of at most [`ARENA`] bytes, one per read (so a held message
    /// keeps at most that much alive, and a stream of small messages costs
    /// one allocation per arena rather than one or two per message, as
    /// profiles showed), the rest into allocations of their own. A frame
    /// as large as the read buffer is split off without a copy.
    fn take_frame(&mut self, len: usize) -> Bytes {
        if len <= ARENA_FRAME {
            if self.arena.capacity() - self.arena.len() < len {
                // No larger than what is buffered: one small message
                // gets a small arena.
                self.arena = BytesMut::with_capacity(self.buf.len().min(ARENA));
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
