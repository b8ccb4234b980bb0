//! A download on disk: the partial file that collects verified chunks, the
//! manifest kept beside it, and the rename that publishes the file.
//!
//! For `NAME` under `--out`, chunks are written into `.NAME.part`, and the
//! manifest they belong to into `.NAME.manifest`. Only verified chunks are
//! ever written, and `.NAME.part` becomes `NAME` (a rename, after an
//! fsync) only once the whole file hashes to the manifest's SHA-256: a
//! crash at any moment leaves `NAME` absent or complete, never corrupt.
//!
//! A later `get` of the same name reads the kept manifest: if the server's
//! file is still that version, each chunk already on disk is hashed again
//! and only the missing or bad ones are fetched; if the file changed, the
//! partial file is thrown away and the download starts over, saying so.
//!
//! Nothing is written outside `--out`: the name is checked (no `..`, not
//! absolute), directories are created one part at a time, and any symlink
//! met on the way (or in place of the partial files) is refused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use super::FetchError;
use super::manifest::{from_complete, to_complete};
use crate::blocking;
use crate::digest::{self, FileDigest};
use crate::names;
use crate::pb::Manifest;

/// Where one file's download lives under `--out`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    name: String,
    dir: PathBuf,
    file: PathBuf,
    part: PathBuf,
    manifest: PathBuf,
}

impl Target {
    /// The paths for `name` under `out`, creating its directories. Refuses
    /// a bad name and any symlink on the way.
    pub(crate) fn prepare(out: &Path, name: &str) -> Result<Self, FetchError> {
        let parts = names::parts(name).map_err(FetchError::BadName)?;
        let (file_name, dirs) = parts
            .split_last()
            .ok_or(FetchError::BadName(names::NameError::Empty))?;
        let mut dir = out.to_owned();
        for part in dirs {
            dir.push(part);
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(refuse(&dir, "is a symlink or a file, not a directory")),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&dir)
                        .map_err(FetchError::local(format!("creating {}", dir.display())))?;
                }
                Err(error) => {
                    return Err(FetchError::local(format!("checking {}", dir.display()))(
                        error,
                    ));
                }
            }
        }
        let target = Self {
            name: name.to_owned(),
            file: dir.join(file_name),
            part: dir.join(format!(".{file_name}.part")),
            manifest: dir.join(format!(".{file_name}.manifest")),
            dir,
        };
        for path in [&target.part, &target.manifest] {
            if fs::symlink_metadata(path).is_ok_and(|meta| !meta.is_file()) {
                return Err(refuse(path, "is a symlink or not a regular file"));
            }
        }
        Ok(target)
    }

    /// The final path.
    pub(crate) fn path(&self) -> &Path {
        &self.file
    }
}

fn refuse(path: &Path, why: &str) -> FetchError {
    FetchError::Local {
        what: format!("refusing to write through {}", path.display()),
        source: io::Error::new(io::ErrorKind::PermissionDenied, why.to_owned()),
    }
}

/// What opening a download found on disk.
#[derive(Debug)]
pub(crate) enum Found {
    /// Nothing: a fresh start.
    Nothing,
    /// A partial download of this version: `chunks` of it verified again.
    Resumed {
        /// Chunks that verified.
        chunks: u64,
    },
    /// A partial download of another version (the file changed on the
    /// server since): thrown away.
    Changed {
        /// The version it was for.
        was: String,
    },
    /// A partial file without a usable manifest: thrown away.
    Unusable,
}

/// An open download: the partial file and which chunks it holds verified.
#[derive(Debug)]
pub(crate) struct Partial {
    target: Target,
    digest: Arc<FileDigest>,
    file: Arc<File>,
    verified: Vec<bool>,
}

impl Partial {
    /// Opens the download of `digest` at `target`: resumes a partial
    /// download of the same version, or starts over.
    pub(crate) async fn open(
        target: Target,
        digest: Arc<FileDigest>,
    ) -> Result<(Self, Found), FetchError> {
        blocking::run(move || Self::open_now(target, digest))
            .await
            .map_err(FetchError::local("opening the partial file"))?
    }

    fn open_now(target: Target, digest: Arc<FileDigest>) -> Result<(Self, Found), FetchError> {
        let part = target.part.display().to_string();
        let local = |what: &str| FetchError::local(format!("{what} {part}"));
        let kept = fs::read(&target.manifest)
            .ok()
            .and_then(|bytes| Manifest::decode(&bytes[..]).ok())
            .and_then(|manifest| from_complete(manifest, &target.name));
        let has_part = target.part.exists();
        let found = match kept {
            Some(kept) if kept == *digest && has_part => Found::Resumed { chunks: 0 },
            Some(kept) if has_part => Found::Changed {
                was: digest::short(&kept.sha256),
            },
            None if has_part => Found::Unusable,
            _ => Found::Nothing,
        };
        if !matches!(found, Found::Resumed { .. }) {
            let _ = fs::remove_file(&target.part);
            let manifest = to_complete(&digest, &target.name).encode_to_vec();
            write_synced(&target.manifest, &manifest).map_err(local("keeping the manifest of"))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&target.part)
            .map_err(local("opening"))?;
        let mut partial = Self {
            verified: vec![false; digest.chunks.len()],
            target,
            digest,
            file: Arc::new(file),
        };
        let found = match found {
            Found::Resumed { .. } => Found::Resumed {
                chunks: partial.verify_on_disk().map_err(local("re-verifying"))?,
            },
            other => other,
        };
        partial
            .file
            .set_len(partial.digest.size)
            .map_err(local("sizing"))?;
        Ok((partial, found))
    }

    /// Hashes every chunk already on disk against the manifest; returns how
    /// many verified.
    fn verify_on_disk(&mut self) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        let mut buf = vec![0; self.digest.chunk_size as usize];
        let mut file = &*self.file;
        let mut good = 0;
        for (index, expected) in self.digest.chunks.iter().enumerate() {
            let (start, chunk_len) = self.digest.chunk_span(index as u32);
            if start + chunk_len as u64 > len {
                break;
            }
            file.seek(SeekFrom::Start(start))?;
            let read = digest::read_full(&mut file, &mut buf[..chunk_len])?;
            if read == chunk_len && digest::sha256(&buf[..chunk_len]) == *expected {
                self.verified[index] = true;
                good += 1;
            }
        }
        Ok(good)
    }

    /// The chunks still to fetch, in order.
    pub(crate) fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        self.verified
            .iter()
            .enumerate()
            .filter(|(_, done)| !**done)
            .map(|(index, _)| index as u32)
    }

    /// Bytes already verified on disk.
    pub(crate) fn verified_bytes(&self) -> u64 {
        self.verified
            .iter()
            .enumerate()
            .filter(|(_, done)| **done)
            .map(|(index, _)| self.digest.chunk_span(index as u32).1 as u64)
            .sum()
    }

    /// Writes chunk `index`, which the caller verified.
    pub(crate) async fn write(&mut self, index: u32, data: Bytes) -> Result<(), FetchError> {
        let (start, _) = self.digest.chunk_span(index);
        let file = Arc::clone(&self.file);
        blocking::run(move || {
            let mut file = &*file;
            file.seek(SeekFrom::Start(start))?;
            file.write_all(&data)
        })
        .await
        .and_then(|written| written)
        .map_err(FetchError::local(format!(
            "writing chunk {index} to {}",
            self.target.part.display()
        )))?;
        self.verified[index as usize] = true;
        Ok(())
    }

    /// Checks the whole file against the manifest, then publishes it under
    /// its final name (fsync, rename, fsync of the directory) and removes
    /// the kept manifest. A file that does not verify is removed instead.
    pub(crate) async fn finish(self) -> Result<(), FetchError> {
        blocking::run(move || self.finish_now())
            .await
            .map_err(FetchError::local("finishing the download"))?
    }

    fn finish_now(self) -> Result<(), FetchError> {
        let part = self.target.part.display().to_string();
        self.file
            .sync_all()
            .map_err(FetchError::local(format!("syncing {part}")))?;
        let got = digest::file_sha256(&self.target.part, 1 << 20)
            .map_err(FetchError::local(format!("hashing {part}")))?;
        if got != self.digest.sha256 {
            let _ = fs::remove_file(&self.target.part);
            let _ = fs::remove_file(&self.target.manifest);
            return Err(FetchError::Mismatch {
                expected: digest::hex(&self.digest.sha256),
                got: digest::hex(&got),
            });
        }
        fs::rename(&self.target.part, &self.target.file).map_err(FetchError::local(format!(
            "renaming {part} to {}",
            self.target.file.display()
        )))?;
        let _ = fs::remove_file(&self.target.manifest);
        // Make the rename itself durable, where directories can be synced.
        if let Ok(dir) = File::open(&self.target.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
