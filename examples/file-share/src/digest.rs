//! SHA-256 of files and of their chunks: what a manifest is made of, on
//! the server when it builds one and on the client when it checks what it
//! has on disk.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// `hash` in lowercase hex (64 characters).
pub fn hex(hash: &[u8]) -> String {
    let mut text = String::with_capacity(hash.len() * 2);
    for byte in hash {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The first 12 hex characters of `hash`: enough to tell versions apart
/// in a message.
pub fn short(hash: &[u8]) -> String {
    let mut text = hex(hash);
    text.truncate(12);
    text
}

/// A 32-byte hash from the wire; `None` for any other length.
pub fn from_wire(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

/// The hashes of one version of a file: the whole and each chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// The file's size in bytes.
    pub size: u64,
    /// Bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u32,
    /// The SHA-256 of the whole file.
    pub sha256: Hash,
    /// The SHA-256 of each chunk, in order.
    pub chunks: Vec<Hash>,
}

impl FileDigest {
    /// Reads `path` through once, `chunk_size` bytes at a time, hashing
    /// each chunk and the whole. Memory: one chunk's buffer.
    pub fn of_file(path: &Path, chunk_size: u32) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let mut whole = Sha256::new();
        let mut chunks = Vec::new();
        let mut buf = vec![0; chunk_size as usize];
        let mut size = 0u64;
        loop {
            let len = read_full(&mut file, &mut buf)?;
            if len == 0 {
                break;
            }
            whole.update(&buf[..len]);
            chunks.push(sha256(&buf[..len]));
            size += len as u64;
            if len < buf.len() {
                break;
            }
        }
        Ok(Self {
            size,
            chunk_size,
            sha256: whole.finalize().into(),
            chunks,
        })
    }

    /// How many chunks a file of `size` bytes has, in `chunk_size` chunks.
    pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
        size.div_ceil(u64::from(chunk_size.max(1)))
    }

    /// Where chunk `index` starts, and how long it is.
    pub fn chunk_span(&self, index: u32) -> (u64, usize) {
        span(self.size, self.chunk_size, index)
    }
}

/// Where chunk `index` of a `size`-byte file in `chunk_size` chunks
/// starts, and how long it is (0 past the end).
pub fn span(size: u64, chunk_size: u32, index: u32) -> (u64, usize) {
    let start = u64::from(index) * u64::from(chunk_size);
    let len = size.saturating_sub(start).min(u64::from(chunk_size));
    (start, len as usize)
}

/// Reads until `buf` is full or the file ends; returns how much was read.
pub fn read_full(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The SHA-256 of a whole file, read `buf_size` bytes at a time.
pub fn file_sha256(path: &Path, buf_size: usize) -> io::Result<Hash> {
    let mut file = File::open(path)?;
    let mut whole = Sha256::new();
    let mut buf = vec![0; buf_size.max(1)];
    loop {
        let len = read_full(&mut file, &mut buf)?;
        if len == 0 {
            break;
        }
        whole.update(&buf[..len]);
    }
    Ok(whole.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_whole_and_by_chunk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let digest = FileDigest::of_file(&path, 4096).expect("digest");
        assert_eq!(digest.size, 10_000);
        assert_eq!(digest.sha256, sha256(&data));
        assert_eq!(digest.chunks.len(), 3);
        assert_eq!(digest.chunks[2], sha256(&data[8192..]));
        assert_eq!(digest.chunk_span(2), (8192, 10_000 - 8192));
        assert_eq!(file_sha256(&path, 1000).expect("hash"), digest.sha256);
        assert_eq!(FileDigest::chunk_count(10_000, 4096), 3);
        assert_eq!(FileDigest::chunk_count(0, 4096), 0);
    }

    #[test]
    fn an_empty_file_has_no_chunks_and_the_empty_hash() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").expect("write");
        let digest = FileDigest::of_file(&path, 4096).expect("digest");
        assert!(digest.chunks.is_empty());
        assert_eq!(
            hex(&digest.sha256),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
