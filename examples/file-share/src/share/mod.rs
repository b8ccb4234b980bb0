//! The server side: the [`Share`] service over one directory, and
//! [`serve`] to run it on either transport.
//!
//! Every call resolves its name inside the shared directory first
//! ([`catalog`]), so a name that is malformed or leads out of it is refused
//! whatever the client asks. A chunk is read, hashed and checked against
//! the file's current digest before it is sent: a file that changed since
//! the client's manifest is reported (`FAILED_PRECONDITION`), never served
//! as a mix of two versions.

mod catalog;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use protowright::net::Net;
use protowright::rpc::{Code, Status};
use protowright::{Server, ServerConfig, ServerHandle, Transport};
use tokio::sync::Semaphore;

use crate::blocking;
use crate::digest::{self, FileDigest};
use crate::pb::{
    Chunk, ChunkRequest, FileInfo, FileShare, FileShareServer, ListReply, ListRequest, Manifest,
    ManifestRequest,
};
pub use catalog::MAX_LISTED;
use catalog::{Catalog, io_status};

/// The largest chunk a server may be configured with: one chunk and its
/// envelope fit well inside reliable UDP's 1 MiB message limit.
pub const MAX_CHUNK_SIZE: u32 = 512 * 1024;

/// Chunk hashes per manifest page (32 bytes each, about 280 KiB a page).
pub const MANIFEST_PAGE: usize = 8192;

/// Files per listing page.
pub const LIST_PAGE: usize = 256;

/// How the server shares its directory.
///
/// Defaults: 256 KiB chunks; 32 chunk reads at once across all
/// connections; and protowright's server defaults except at most 256
/// connections, each serving at most 32 calls at once.
#[derive(Debug, Clone)]
pub struct ShareConfig {
    /// Bytes per chunk, 4 KiB ..= [`MAX_CHUNK_SIZE`].
    pub chunk_size: u32,
    /// Chunks being read, hashed and answered at once, across every
    /// connection: with `chunk_size`, this bounds the server's chunk memory.
    pub max_reads: usize,
    /// The transport server's settings.
    pub server: ServerConfig,
}

impl Default for ShareConfig {
    fn default() -> Self {
        let mut server = ServerConfig {
            max_connections: 256,
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

/// The server's counters.
#[derive(Debug, Default)]
pub struct ShareStats {
    lists: AtomicU64,
    manifests: AtomicU64,
    chunks: AtomicU64,
    bytes: AtomicU64,
    refused: AtomicU64,
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

/// The file-sharing service over one directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Share {
    catalog: Arc<Catalog>,
    reads: Arc<Semaphore>,
    stats: Arc<ShareStats>,
}

impl Share {
    /// Shares `dir` as `config` says. Fails when `dir` is not a readable
    /// directory or the chunk size is out of range.
    pub fn new(dir: &Path, config: &ShareConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (4096..=MAX_CHUNK_SIZE).contains(&config.chunk_size),
            "the chunk size must be between 4096 and {MAX_CHUNK_SIZE} bytes, not {}",
            config.chunk_size
        );
        anyhow::ensure!(config.max_reads > 0, "max_reads must be at least 1");
        let catalog = Catalog::new(dir, config.chunk_size)
            .map_err(|e| anyhow::anyhow!("cannot share {}: {e}", dir.display()))?;
        Ok(Self {
            catalog: Arc::new(catalog),
            reads: Arc::new(Semaphore::new(config.max_reads)),
            stats: Arc::default(),
        })
    }

    /// The shared directory (canonical).
    pub fn root(&self) -> &Path {
        self.catalog.root()
    }

    /// The service's counters.
    pub fn stats(&self) -> Arc<ShareStats> {
        Arc::clone(&self.stats)
    }

    /// Runs `work` with the catalog, off the async task; counts a failure.
    async fn with_catalog<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Catalog) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let catalog = Arc::clone(&self.catalog);
        let outcome = blocking::run(move || work(&catalog))
            .await
            .unwrap_or_else(|error| Err(Status::unavailable(error.to_string())));
        if outcome.is_err() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

/// The digest of `name`, resolved inside the catalog.
fn digest_of(catalog: &Catalog, name: &str) -> Result<(PathBuf, Arc<FileDigest>), Status> {
    let path = catalog.resolve(name)?;
    let digest = catalog
        .digest(&path)
        .map_err(|error| io_status(name, &error))?;
    Ok((path, digest))
}

fn changed(name: &str, now: &FileDigest, asked: &[u8]) -> Status {
    Status::new(
        Code::FailedPrecondition,
        format!(
            "`{name}` changed on the server: it is now version {}, not {}; fetch its manifest again",
            digest::short(&now.sha256),
            digest::short(asked)
        ),
    )
}

impl FileShare for Share {
    async fn list(&self, request: ListRequest) -> Result<ListReply, Status> {
        let offset = request.offset as usize;
        let reply = self
            .with_catalog(move |catalog| {
                let all = catalog.walk();
                let end = offset.saturating_add(LIST_PAGE).min(all.len());
                let files = all
                    .get(offset..end)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|(name, path)| {
                        // A file that vanished since the walk is left out.
                        let digest = catalog.digest(path).ok()?;
                        Some(FileInfo {
                            name: name.clone(),
                            size: digest.size,
                            sha256: digest.sha256.to_vec().into(),
                        })
                    })
                    .collect();
                let next_offset = if end < all.len() {
                    u32::try_from(end).unwrap_or(0)
                } else {
                    0
                };
                Ok(ListReply { files, next_offset })
            })
            .await?;
        self.stats.lists.fetch_add(1, Ordering::Relaxed);
        Ok(reply)
    }

    async fn get_manifest(&self, request: ManifestRequest) -> Result<Manifest, Status> {
        let manifest = self
            .with_catalog(move |catalog| {
                let (_, digest) = digest_of(catalog, &request.name)?;
                if !request.sha256.is_empty() && request.sha256[..] != digest.sha256[..] {
                    return Err(changed(&request.name, &digest, &request.sha256));
                }
                let first = request.first_chunk as usize;
                let page = digest.chunks.iter().skip(first).take(MANIFEST_PAGE);
                Ok(Manifest {
                    chunk_count: u32::try_from(digest.chunks.len()).map_err(|_| {
                        Status::new(Code::OutOfRange, "the file has too many chunks to share")
                    })?,
                    chunk_sha256: page.map(|hash| hash.to_vec().into()).collect(),
                    name: request.name,
                    size: digest.size,
                    sha256: digest.sha256.to_vec().into(),
                    chunk_size: digest.chunk_size,
                    first_chunk: request.first_chunk,
                })
            })
            .await?;
        self.stats.manifests.fetch_add(1, Ordering::Relaxed);
        Ok(manifest)
    }

    async fn read_chunk(&self, request: ChunkRequest) -> Result<Chunk, Status> {
        // The permit bounds the chunks held in memory across connections.
        let _permit = self
            .reads
            .acquire()
            .await
            .map_err(|_| Status::unavailable("the server is shutting down"))?;
        let chunk = self
            .with_catalog(move |catalog| {
                let name = request.name.as_str();
                let (path, digest) = digest_of(catalog, name)?;
                if request.sha256.len() != 32 {
                    return Err(Status::invalid_argument(
                        "a chunk request needs the file's 32-byte SHA-256 from its manifest",
                    ));
                }
                if request.sha256[..] != digest.sha256[..] {
                    return Err(changed(name, &digest, &request.sha256));
                }
                let index = request.index;
                if index as usize >= digest.chunks.len() {
                    return Err(Status::new(
                        Code::OutOfRange,
                        format!("`{name}` has {} chunks, not {}", digest.chunks.len(), index + 1),
                    ));
                }
                let data = Catalog::read_chunk(&path, &digest, index)
                    .map_err(|error| io_status(name, &error))?;
                match data {
                    Some(data) if digest::sha256(&data) == digest.chunks[index as usize] => {
                        Ok(Chunk { index, data })
                    }
                    _ => {
                        // Written to since it was hashed: never serve a
                        // mix of two versions.
                        catalog.forget(&path);
                        Err(Status::new(
                            Code::FailedPrecondition,
                            format!("`{name}` changed on the server while it was read; fetch its manifest again"),
                        ))
                    }
                }
            })
            .await?;
        self.stats.chunks.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
        Ok(chunk)
    }
}

/// A running server.
#[derive(Debug, Clone)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Shuts it down and observes its connections.
    pub handle: ServerHandle,
    /// The service's counters.
    pub stats: Arc<ShareStats>,
    /// The shared directory (canonical).
    pub root: PathBuf,
}

/// Shares `dir` on `addr` over `net` and `transport`, on a task of its own.
pub async fn serve<N: Net>(
    net: N,
    transport: Transport,
    addr: SocketAddr,
    dir: &Path,
    config: ShareConfig,
) -> anyhow::Result<Running> {
    let share = Share::new(dir, &config)?;
    serve_service(net, transport, addr, config.server, Arc::new(share.clone()))
        .await
        .map(|(addr, handle)| Running {
            addr,
            handle,
            stats: share.stats(),
            root: share.root().to_owned(),
        })
}

/// Serves any [`FileShare`] implementation (the real [`Share`], or a test's
/// wrapper around it) on `addr`, on a task of its own.
pub async fn serve_service<N: Net, S: FileShare>(
    net: N,
    transport: Transport,
    addr: SocketAddr,
    config: ServerConfig,
    service: Arc<S>,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let server = Server::bind(net, transport, addr, config).await?;
    let bound = server.local_addr();
    let handle = server.handle();
    tokio::spawn(server.serve(FileShareServer::from_arc(service)));
    Ok((bound, handle))
}
