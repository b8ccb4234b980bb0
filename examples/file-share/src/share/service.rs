//! The [`Share`] service: the `FileShare` methods over a [`Catalog`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use protowright::rpc::{Code, Status};
use tokio::sync::Semaphore;

use super::catalog::{Catalog, io_status};
use super::{MAX_CHUNK_SIZE, ShareConfig, ShareStats};
use crate::blocking;
use crate::digest::{self, FileDigest};
use crate::pb::{
    Chunk, ChunkRequest, FileInfo, FileShare, ListReply, ListRequest, Manifest, ManifestRequest,
};

/// Chunk hashes per manifest page (32 bytes each, about 280 KiB a page).
pub const MANIFEST_PAGE: usize = 8192;

/// Files per listing page.
pub const LIST_PAGE: usize = 256;

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
        // The permit bounds the chunks being read across connections.
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
