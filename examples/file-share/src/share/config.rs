//! The settings of a share.

use std::time::Duration;

use protowright::ServerConfig;

/// The largest chunk a server may be configured with: one chunk and its
/// envelope fit well inside reliable UDP's 1 MiB message limit.
pub const MAX_CHUNK_SIZE: u32 = 512 * 1024;

/// How the server shares its directory.
///
/// Defaults: 256 KiB chunks; 32 chunk reads at once across all
/// connections; and protowright's server defaults except at most 64
/// connections, each serving at most 32 calls at once, and 3 s (not 10 s)
/// for calls in flight to finish on shutdown: a chunk call is short, and a
/// client that vanished without closing would otherwise hold Ctrl-C up.
///
/// Memory: reads in progress hold at most `max_reads × chunk_size` (8 MiB)
/// for the whole server. A connection holds at most its 32 calls' chunks
/// (8 MiB) waiting for a slow reader, plus its 1 MiB outgoing queue.
#[derive(Debug, Clone)]
pub struct ShareConfig {
    /// Bytes per chunk, 4 KiB ..= [`MAX_CHUNK_SIZE`].
    pub chunk_size: u32,
    /// Chunks being read and hashed at once, across every connection.
    pub max_reads: usize,
    /// The transport server's settings.
    pub server: ServerConfig,
}

impl Default for ShareConfig {
    fn default() -> Self {
        let mut server = ServerConfig {
            max_connections: 64,
            shutdown_timeout: Duration::from_secs(3),
            ..ServerConfig::default()
        };
        server.session.max_concurrent_requests = 32;
        Self {
            chunk_size: 256 * 1024,
            max_reads: 32,
            server,
        }
    }
}
