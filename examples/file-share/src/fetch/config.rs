//! The settings of a `get`.

use std::time::Duration;

use protowright::{Backoff, ClientConfig};

/// How a `get` behaves.
///
/// Defaults: keep retrying a lost server for 60 s without progress; 16
/// chunk calls in flight for the whole client, at most 8 of them for one
/// file; 4 files at once; each call may take 20 s; and protowright's client
/// defaults, except that reconnects back off to 2 s at most (not 10 s), so
/// a restarted server is found soon.
#[derive(Debug, Clone)]
pub struct GetConfig {
    /// How long a download keeps retrying without any progress.
    pub retry_for: Duration,
    /// Chunk calls in flight across all files: with the server's chunk
    /// size (at most [`MAX_CHUNK_SIZE`](super::MAX_CHUNK_SIZE)), this bounds the chunk data held.
    pub window: usize,
    /// Chunk calls in flight for one file.
    pub per_file: usize,
    /// Files downloading at once.
    pub parallel: usize,
    /// How long one call may take.
    pub call_timeout: Duration,
    /// The transport client's settings.
    pub client: ClientConfig,
}

impl Default for GetConfig {
    fn default() -> Self {
        Self {
            retry_for: Duration::from_secs(60),
            window: 16,
            per_file: 8,
            parallel: 4,
            call_timeout: Duration::from_secs(20),
            client: ClientConfig {
                backoff: Backoff {
                    max: Duration::from_secs(2),
                    ..Backoff::default()
                },
                ..ClientConfig::default()
            },
        }
    }
}
