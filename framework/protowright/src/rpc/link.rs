//! What a session runs over: a link that carries whole envelopes.
//!
//! A session reads whole envelope frames and writes batches of
//! length-delimited frames; a link moves them. Over TCP (and in memory) the
//! link is a byte stream cut into delimited frames
//! ([`StreamLink`](super::stream::StreamLink)); over reliable UDP every envelope
//! is one message on the connection's session lane, which the engine
//! already delivers whole and in order. So the session never pretends a
//! message transport is a byte stream, nor a byte stream a message one.

use std::future::Future;

use bytes::Bytes;

use super::keepalive::{Activity, Moment};
use super::stats::Counters;
use crate::error::ConnectionError;

/// A link split into its two directions, each driven by one side of the
/// session's task.
pub(crate) trait Link: Send + 'static {
    /// The receiving direction.
    type Reader: LinkReader;
    /// The sending direction.
    type Writer: LinkWriter;

    /// Splits the link.
    fn split(self) -> (Self::Reader, Self::Writer);
}

/// The receiving direction of a [`Link`].
pub(crate) trait LinkReader: Send + 'static {
    /// Waits until at least one whole envelope has arrived, then appends
    /// every whole envelope available now to `frames` (each the envelope's
    /// encoding, without a length prefix). Returns `Ok(false)`, with
    /// nothing appended, when the peer ended the link cleanly. Reports
    /// every arrival of bytes to `meter`, whole envelopes or not, so a large
    /// envelope arriving slowly still shows the peer is alive.
    fn read(
        &mut self,
        frames: &mut Vec<Bytes>,
        meter: &Meter<'_>,
    ) -> impl Future<Output = Result<bool, ConnectionError>> + Send;
}

/// The sending direction of a [`Link`].
pub(crate) trait LinkWriter: Send + 'static {
    /// Sends a prefix of `batch` (length-delimited envelope frames) and
    /// returns how many bytes of it went: at least one, waiting while the
    /// link has no room. The session times each call out when it makes no
    /// progress for its write-stall timeout.
    fn write(
        &mut self,
        batch: &Bytes,
    ) -> impl Future<Output = Result<usize, ConnectionError>> + Send;

    /// Pushes out anything the link buffers.
    fn flush(&mut self) -> impl Future<Output = Result<(), ConnectionError>> + Send;

    /// Ends the sending direction cleanly, after what was written.
    fn shutdown(&mut self) -> impl Future<Output = Result<(), ConnectionError>> + Send;
}

/// Where a link reports what it read: the session's activity clock (for
/// heartbeats and the dead-peer bound) and its byte counter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meter<'a> {
    pub(super) activity: &'a Activity,
    pub(super) counters: &'a Counters,
}

impl Meter<'_> {
    /// `bytes` arrived from the peer.
    pub(crate) fn on_read(&self, bytes: usize) {
        self.activity.mark(Moment::Read);
        Counters::add(&self.counters.bytes_in, bytes as u64);
    }

    /// The link now holds `bytes` of memory for reading (its buffer's
    /// capacity).
    pub(crate) fn on_reserved(&self, bytes: usize) {
        self.counters
            .read_reserved
            .store(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }
}
