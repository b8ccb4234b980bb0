//! Limits and defaults of an RPC session.

use std::time::Duration;

use crate::codec::DEFAULT_MAX_FRAME;

/// How an RPC session behaves. Every queue it keeps is bounded by a field here.
///
/// Defaults: 4 MiB frames, 1024 calls in flight each way, 1024 envelopes
/// queued for writing, a 30 s default call timeout, 64 KiB read and write
/// buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest envelope, in bytes, sent or accepted. A larger incoming
    /// frame closes the connection; a larger outgoing request or response
    /// fails with `RESOURCE_EXHAUSTED` instead of being sent.
    pub max_frame: usize,
    /// Outgoing calls awaiting a response. A further call waits for a free
    /// slot (within its deadline).
    pub max_in_flight: usize,
    /// Incoming requests being served at once. A further request is answered
    /// `RESOURCE_EXHAUSTED` at once.
    pub max_concurrent_requests: usize,
    /// Envelopes queued for the writer. When full, senders wait: this is the
    /// session's backpressure.
    pub outgoing_queue: usize,
    /// The timeout of calls that set none. `None` waits until the response
    /// arrives or the connection closes.
    pub default_timeout: Option<Duration>,
    /// How many bytes the writer gathers from queued envelopes into one write.
    pub write_batch: usize,
    /// The read buffer's initial capacity.
    pub read_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: 1024,
            max_concurrent_requests: 1024,
            outgoing_queue: 1024,
            default_timeout: Some(Duration::from_secs(30)),
            write_batch: 64 * 1024,
            read_buffer: 64 * 1024,
        }
    }
}
