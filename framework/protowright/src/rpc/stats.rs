//! What a session counts, for monitoring and for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of one connection's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes read from the stream.
    pub bytes_in: u64,
    /// Bytes written to the stream.
    pub bytes_out: u64,
    /// Envelopes decoded.
    pub messages_in: u64,
    /// Envelopes written.
    pub messages_out: u64,
    /// Envelopes waiting for the writer now.
    pub queue_depth: usize,
    /// Protocol messages received and waiting for the application now.
    pub inbox_depth: usize,
    /// The latest round trip measured by a heartbeat, if any was answered.
    pub rtt: Option<Duration>,
    /// Bytes the link holds for reading now (over a byte stream, its read
    /// buffer's capacity; 0 over reliable UDP, whose engine counts its
    /// own). A partial frame grows it with the bytes that arrived, never
    /// with the length its prefix announced.
    pub read_reserved: usize,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) messages_in: AtomicU64,
    pub(super) messages_out: AtomicU64,
    /// Microseconds; 0 until the first heartbeat is answered.
    pub(super) rtt_micros: AtomicU64,
    /// A gauge: the link's read buffer capacity now.
    pub(super) read_reserved: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    pub(super) fn record_rtt(&self, rtt: Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.rtt_micros.store(micros, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self, queue_depth: usize, inbox_depth: usize) -> Stats {
        let rtt = match self.rtt_micros.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        };
        Stats {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            messages_in: self.messages_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            queue_depth,
            inbox_depth,
            rtt,
            read_reserved: usize::try_from(self.read_reserved.load(Ordering::Relaxed))
                .unwrap_or(usize::MAX),
        }
    }
}
