//! What a share has served, counted.

use std::sync::atomic::{AtomicU64, Ordering};

/// The server's counters.
#[derive(Debug, Default)]
pub struct ShareStats {
    pub(super) lists: AtomicU64,
    pub(super) manifests: AtomicU64,
    pub(super) chunks: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) refused: AtomicU64,
}

/// The server's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Listing pages served.
    pub lists: u64,
    /// Manifest pages served.
    pub manifests: u64,
    /// Chunks served.
    pub chunks: u64,
    /// Bytes of chunk data served.
    pub bytes: u64,
    /// Calls refused or failed (missing files, refused names, changed files).
    pub refused: u64,
}

impl ShareStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            lists: self.lists.load(Ordering::Relaxed),
            manifests: self.manifests.load(Ordering::Relaxed),
            chunks: self.chunks.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}
