//! Fetching a file's manifest, page by page, and refusing one that cannot
//! be right: the client plans its writes from the manifest, so nothing in
//! it is taken on trust (the name, the sizes, the counts, the hashes).

use protowright::rpc::Channel;

use super::patience::{Patience, Verdict, judge};
use super::{FetchError, Stop};
use crate::digest::{self, FileDigest, Hash};
use crate::pb::{FileShare as _, FileShareClient, Manifest, ManifestRequest};
use crate::progress::{Event, Progress};

/// The largest chunk this client accepts (a server may choose any size up
/// to it): it bounds the memory of each chunk call in flight.
pub const MAX_CHUNK_SIZE: u32 = 1 << 20;

/// The most chunks a file may have: it bounds the manifest's memory
/// (32 bytes a chunk, so 128 MiB at most) and the pages fetched.
pub const MAX_CHUNKS: u64 = 1 << 22;

/// Fetches and checks the whole manifest of `name`, retrying what is
/// worth retrying.
pub(crate) async fn fetch<C: Channel>(
    client: &FileShareClient<C>,
    name: &str,
    patience: &mut Patience,
    progress: &dyn Progress,
) -> Result<FileDigest, Stop> {
    let first = call(client, name, 0, None, patience, progress).await?;
    let mut digest = head(&first, name).map_err(bad)?;
    let count = first.chunk_count;
    append(&mut digest, first, count).map_err(bad)?;
    while digest.chunks.len() < count as usize {
        let next = digest.chunks.len() as u32;
        let page = call(client, name, next, Some(digest.sha256), patience, progress).await?;
        if head(&page, name).map_err(bad)? != head_of(&digest) {
            return Err(bad("a page describes another version of the file".into()));
        }
        append(&mut digest, page, count).map_err(bad)?;
    }
    Ok(digest)
}

/// One manifest page, retried while the server is unreachable.
async fn call<C: Channel>(
    client: &FileShareClient<C>,
    name: &str,
    first_chunk: u32,
    version: Option<Hash>,
    patience: &mut Patience,
    progress: &dyn Progress,
) -> Result<Manifest, Stop> {
    let request = ManifestRequest {
        name: name.to_owned(),
        first_chunk,
        sha256: version.map(|hash| hash.to_vec().into()).unwrap_or_default(),
    };
    loop {
        let status = match client.get_manifest(request.clone()).await {
            Ok(manifest) => {
                patience.on_progress();
                return Ok(manifest);
            }
            Err(status) => status,
        };
        match judge(status.clone()) {
            Verdict::Retry => {
                if patience.is_fresh() {
                    progress.event(name, Event::Note(format!("retrying: {status}")));
                }
                let delay = patience.on_failure(status).map_err(Stop::Failed)?;
                tokio::time::sleep(delay).await;
            }
            Verdict::Changed(status) => return Err(Stop::Changed(status.message().to_owned())),
            Verdict::Fail(error) => return Err(Stop::Failed(error)),
        }
    }
}

fn bad(why: String) -> Stop {
    Stop::Failed(FetchError::BadManifest(why))
}

/// A file's digest without its chunk hashes, from a manifest page, checked
/// for consistency with itself and with the name asked for.
fn head(manifest: &Manifest, name: &str) -> Result<FileDigest, String> {
    if manifest.name != name {
        return Err(format!(
            "it names `{}`, not `{name}`",
            manifest.name.escape_debug()
        ));
    }
    let sha256 = digest::from_wire(&manifest.sha256)
        .ok_or_else(|| format!("its SHA-256 is {} bytes, not 32", manifest.sha256.len()))?;
    if !(1..=MAX_CHUNK_SIZE).contains(&manifest.chunk_size) {
        return Err(format!(
            "its chunk size {} is outside 1..={MAX_CHUNK_SIZE}",
            manifest.chunk_size
        ));
    }
    let count = FileDigest::chunk_count(manifest.size, manifest.chunk_size);
    if count != u64::from(manifest.chunk_count) {
        return Err(format!(
            "{} chunks of {} bytes cannot make {} bytes",
            manifest.chunk_count, manifest.chunk_size, manifest.size
        ));
    }
    if count > MAX_CHUNKS {
        return Err(format!(
            "{count} chunks is more than this client takes ({MAX_CHUNKS})"
        ));
    }
    Ok(FileDigest {
        size: manifest.size,
        chunk_size: manifest.chunk_size,
        sha256,
        chunks: Vec::new(),
    })
}

fn head_of(digest: &FileDigest) -> FileDigest {
    FileDigest {
        chunks: Vec::new(),
        ..digest.clone()
    }
}

/// Adds a page's chunk hashes to `digest`: the page must continue where
/// the last ended, hold something, and not run past `count`.
fn append(digest: &mut FileDigest, page: Manifest, count: u32) -> Result<(), String> {
    let have = digest.chunks.len();
    if page.first_chunk as usize != have {
        return Err(format!(
            "a page starts at chunk {}, not {have}",
            page.first_chunk
        ));
    }
    if page.chunk_sha256.is_empty() && have < count as usize {
        return Err(format!(
            "a page holds no hashes after chunk {have} of {count}"
        ));
    }
    if have + page.chunk_sha256.len() > count as usize {
        return Err(format!("it lists more than its {count} chunk hashes"));
    }
    for hash in &page.chunk_sha256 {
        let hash = digest::from_wire(hash)
            .ok_or_else(|| format!("a chunk hash is {} bytes, not 32", hash.len()))?;
        digest.chunks.push(hash);
    }
    Ok(())
}

/// A complete manifest (all hashes in one page, as kept beside a partial
/// download) as a digest; `None` when it is not a whole, consistent one.
pub(crate) fn from_complete(manifest: Manifest, name: &str) -> Option<FileDigest> {
    let mut digest = head(&manifest, name).ok()?;
    let count = manifest.chunk_count;
    append(&mut digest, manifest, count).ok()?;
    (digest.chunks.len() == count as usize).then_some(digest)
}

/// `digest` as one complete manifest, to keep beside a partial download.
pub(crate) fn to_complete(digest: &FileDigest, name: &str) -> Manifest {
    Manifest {
        name: name.to_owned(),
        size: digest.size,
        sha256: digest.sha256.to_vec().into(),
        chunk_size: digest.chunk_size,
        chunk_count: digest.chunks.len() as u32,
        first_chunk: 0,
        chunk_sha256: digest.chunks.iter().map(|h| h.to_vec().into()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, size: u64, chunk_size: u32, hashes: usize) -> Manifest {
        Manifest {
            name: name.into(),
            size,
            sha256: vec![7; 32].into(),
            chunk_size,
            chunk_count: FileDigest::chunk_count(size, chunk_size) as u32,
            first_chunk: 0,
            chunk_sha256: (0..hashes).map(|_| vec![1; 32].into()).collect(),
        }
    }

    #[test]
    fn a_consistent_manifest_round_trips() {
        let digest = from_complete(manifest("a", 10_000, 4096, 3), "a").expect("valid");
        assert_eq!(digest.chunks.len(), 3);
        assert_eq!(from_complete(to_complete(&digest, "a"), "a"), Some(digest));
    }

    #[test]
    fn a_manifest_that_cannot_be_right_is_refused() {
        assert!(
            head(&manifest("../evil", 10, 4096, 1), "a").is_err(),
            "name"
        );
        assert!(head(&manifest("a", 10, 0, 1), "a").is_err(), "zero chunks");
        assert!(head(&manifest("a", 10, MAX_CHUNK_SIZE + 1, 1), "a").is_err());
        let mut lying_count = manifest("a", 10_000, 4096, 3);
        lying_count.chunk_count = 2;
        assert!(head(&lying_count, "a").is_err(), "count");
        let mut short_hash = manifest("a", 10_000, 4096, 3);
        short_hash.chunk_sha256[1] = vec![1; 31].into();
        assert_eq!(from_complete(short_hash, "a"), None);
        assert_eq!(from_complete(manifest("a", 10_000, 4096, 4), "a"), None);
        assert_eq!(from_complete(manifest("a", 10_000, 4096, 2), "a"), None);
    }
}
