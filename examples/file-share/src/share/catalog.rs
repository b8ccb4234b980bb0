//! The shared directory as the server sees it: names resolved inside it
//! (and refused when they lead out), the listing, and each file's digest,
//! cached while the file is unchanged.
//!
//! Every method here blocks on the disk; the service calls them through
//! `blocking::run`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use protowright::rpc::{Code, Status};

use crate::digest::{self, FileDigest};
use crate::names;

/// How many directory entries a listing walks at most; the rest are left
/// out (and a warning logged).
pub const MAX_LISTED: usize = 10_000;

/// How deep a listing descends into subdirectories.
const MAX_DEPTH: usize = 16;

/// How many digests are kept; beyond it the cache forgets one.
const CACHE: usize = 256;

/// A file's identity on disk: when it changes, its digest is recomputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(metadata: &fs::Metadata) -> Self {
        Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

/// The shared directory.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// The directory, canonical (no symlinks), so every resolved path can
    /// be checked to start with it.
    root: PathBuf,
    chunk_size: u32,
    cache: Mutex<BTreeMap<PathBuf, (Stamp, Arc<FileDigest>)>>,
}

impl Catalog {
    /// Shares `dir`, in chunks of `chunk_size` bytes.
    pub(crate) fn new(dir: &Path, chunk_size: u32) -> io::Result<Self> {
        let root = fs::canonicalize(dir)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Self {
            root,
            chunk_size,
            cache: Mutex::default(),
        })
    }

    /// The shared directory, canonical.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The regular file `name` stands for, inside the shared directory.
    ///
    /// NOT_FOUND when there is none; INVALID_ARGUMENT for a malformed name
    /// or a directory; PERMISSION_DENIED when the name leads out of the
    /// directory (through a symlink) or cannot be read.
    pub(crate) fn resolve(&self, name: &str) -> Result<PathBuf, Status> {
        let parts = names::parts(name).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let joined = parts.iter().fold(self.root.clone(), |path, p| path.join(p));
        let real = fs::canonicalize(&joined).map_err(|error| io_status(name, &error))?;
        if !real.starts_with(&self.root) {
            return Err(Status::new(
                Code::PermissionDenied,
                format!("`{name}` is refused: it leads out of the shared directory"),
            ));
        }
        let metadata = fs::metadata(&real).map_err(|error| io_status(name, &error))?;
        if !metadata.is_file() {
            return Err(Status::invalid_argument(format!(
                "`{name}` is not a regular file (a directory?): name a file"
            )));
        }
        Ok(real)
    }

    /// The digest of the file at `path` (resolved), from the cache while
    /// the file's size and modification time are unchanged.
    pub(crate) fn digest(&self, path: &Path) -> io::Result<Arc<FileDigest>> {
        let stamp = Stamp::of(&fs::metadata(path)?);
        if let Some((cached, digest)) = self.lock().get(path)
            && *cached == stamp
        {
            return Ok(Arc::clone(digest));
        }
        let digest = Arc::new(FileDigest::of_file(path, self.chunk_size)?);
        // Stamp after reading too: a file written meanwhile is not cached
        // under the older stamp.
        let after = Stamp::of(&fs::metadata(path)?);
        let mut cache = self.lock();
        if cache.len() >= CACHE
            && let Some(first) = cache.keys().next().cloned()
        {
            cache.remove(&first);
        }
        if after == stamp && after.len == digest.size {
            cache.insert(path.to_owned(), (stamp, Arc::clone(&digest)));
        }
        Ok(digest)
    }

    /// Forgets the digest of `path`: its contents no longer match it.
    pub(crate) fn forget(&self, path: &Path) {
        self.lock().remove(path);
    }

    /// Reads chunk `index` of the file at `path` as `digest` describes it.
    /// `None` when the file no longer holds that many bytes there.
    pub(crate) fn read_chunk(
        path: &Path,
        digest: &FileDigest,
        index: u32,
    ) -> io::Result<Option<Bytes>> {
        let (start, len) = digest.chunk_span(index);
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0; len];
        let read = digest::read_full(&mut file, &mut buf)?;
        Ok((read == len).then(|| Bytes::from(buf)))
    }

    /// Every shared file's name (`/`-separated, relative) and path, in name
    /// order: regular files, and symlinks to regular files that stay inside
    /// the directory. At most [`MAX_LISTED`] entries are walked.
    pub(crate) fn walk(&self) -> Vec<(String, PathBuf)> {
        let mut found = Vec::new();
        let mut pending = vec![(self.root.clone(), String::new(), 0)];
        let mut walked = 0;
        while let Some((dir, prefix, depth)) = pending.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                walked += 1;
                if walked > MAX_LISTED {
                    tracing::warn!(root = %self.root.display(), "listing stopped after {MAX_LISTED} entries");
                    return sorted(found);
                }
                let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let name = format!("{prefix}{file_name}");
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() && depth < MAX_DEPTH {
                    pending.push((path, format!("{name}/"), depth + 1));
                } else if (kind.is_file() || kind.is_symlink()) && self.resolve(&name).is_ok() {
                    found.push((name, path));
                }
            }
        }
        sorted(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, (Stamp, Arc<FileDigest>)>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn sorted(mut found: Vec<(String, PathBuf)>) -> Vec<(String, PathBuf)> {
    found.sort();
    found
}

/// The status for an I/O error on `name`.
pub(crate) fn io_status(name: &str, error: &io::Error) -> Status {
    match error.kind() {
        io::ErrorKind::NotFound => Status::new(
            Code::NotFound,
            format!("no file named `{name}` is shared here"),
        ),
        io::ErrorKind::PermissionDenied => Status::new(
            Code::PermissionDenied,
            format!("`{name}` cannot be read by the server: {error}"),
        ),
        _ => Status::unavailable(format!("reading `{name}` failed on the server: {error}")),
    }
}
