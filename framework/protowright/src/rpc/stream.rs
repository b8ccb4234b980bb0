//! A byte stream as a session's message link: length-delimited envelopes.
//!
//! The TCP transport's link (TLS too), the in-memory harness's pipe's, and
//! that of any `AsyncRead + AsyncWrite` given to
//! [`Session::spawn`](super::Session::spawn). Reading cuts whole frames
//! out of a growing buffer with [`Delimited`], which refuses an oversized
//! length before reserving anything; writing passes the session's batches
//! straight to the stream, so many small envelopes cost one system call.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use super::link::{Link, LinkReader, LinkWriter, Meter};
use crate::codec::Delimited;
use crate::error::ConnectionError;

/// A byte stream carrying length-delimited envelopes.
#[derive(Debug)]
pub(crate) struct StreamLink<IO> {
    io: IO,
    peer: String,
    max_frame: usize,
    read_buffer: usize,
}

impl<IO> StreamLink<IO> {
    /// `io` to `peer`, refusing frames above `max_frame` bytes and reading
    /// `read_buffer` bytes at a time.
    pub(crate) fn new(io: IO, peer: String, max_frame: usize, read_buffer: usize) -> Self {
        Self {
            io,
            peer,
            max_frame,
            read_buffer,
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
            buf: BytesMut::with_capacity(self.read_buffer),
            read_buffer: self.read_buffer,
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
    peer: String,
}

impl<R: AsyncRead + Unpin + Send + 'static> LinkReader for StreamReader<R> {
    async fn read(
        &mut self,
        frames: &mut Vec<Bytes>,
        meter: &Meter<'_>,
    ) -> Result<bool, ConnectionError> {
        loop {
            while let Some(frame) =
                self.codec
                    .decode(&mut self.buf)
                    .map_err(|source| ConnectionError::Frame {
                        peer: self.peer.clone(),
                        source,
                    })?
            {
                frames.push(frame);
            }
            if !frames.is_empty() {
                return Ok(true);
            }
            if self.buf.capacity() - self.buf.len() < self.read_buffer / 4 {
                self.buf.reserve(self.read_buffer);
            }
            let read = self
                .reader
                .read_buf(&mut self.buf)
                .await
                .map_err(|source| ConnectionError::io(&self.peer, source))?;
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
