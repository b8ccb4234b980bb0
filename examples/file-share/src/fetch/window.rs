//! The pipelined part of a download: a window of chunk calls in flight,
//! each chunk verified as it lands and written to the partial file.
//!
//! Up to `per_file` calls of one file are in flight, and each holds a
//! permit of the client-wide window, so the chunk data a client holds is
//! at most `window × chunk size` however many files download at once. A
//! chunk that fails verification is asked for again, a few times; a call
//! the server could not answer (lost, unreachable, busy) is retried after
//! a pause, for as long as the retry period allows; a file that changed on
//! the server stops the window so the download can start over.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protowright::rpc::{Channel, Status};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::partial::Partial;
use super::patience::{Patience, Verdict, judge};
use super::{FetchError, Stop};
use crate::digest::{self, FileDigest};
use crate::pb::{Chunk, ChunkRequest, FileShare as _, FileShareClient};
use crate::progress::{Event, Progress};

/// How many times in a row a chunk may fail verification before the
/// download gives up on the server.
pub const MAX_BAD_CHUNK: u32 = 3;

/// The limits of one file's window.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// This file's calls in flight at most.
    pub(crate) per_file: usize,
    /// The client-wide window: one permit per call in flight.
    pub(crate) permits: Arc<Semaphore>,
}

/// What a chunk call came back with.
type Landed = (u32, Result<Chunk, Status>);

/// Fetches every chunk `partial` is missing; returns how many it fetched.
pub(crate) async fn fetch_missing<C: Channel>(
    client: &FileShareClient<C>,
    name: &Arc<str>,
    digest: &FileDigest,
    partial: &mut Partial,
    window: &Window,
    patience: &mut Patience,
    progress: &dyn Progress,
) -> Result<u64, Stop> {
    let mut queue: VecDeque<(u32, Duration)> = partial
        .missing()
        .map(|index| (index, Duration::ZERO))
        .collect();
    let mut flights: JoinSet<Landed> = JoinSet::new();
    let mut bad: BTreeMap<u32, u32> = BTreeMap::new();
    let version = Bytes::from(digest.sha256.to_vec());
    let mut fetched = 0;
    loop {
        while flights.len() < window.per_file.max(1)
            && let Some((index, delay)) = queue.pop_front()
        {
            let permit = Arc::clone(&window.permits)
                .acquire_owned()
                .await
                .map_err(|_| Stop::Failed(FetchError::Server(Status::cancelled("closed"))))?;
            let client = client.clone();
            let request = ChunkRequest {
                name: name.to_string(),
                sha256: version.clone(),
                index,
            };
            flights.spawn(async move {
                tokio::time::sleep(delay).await;
                let result = client.read_chunk(request).await;
                drop(permit);
                (index, result)
            });
        }
        let Some(landed) = flights.join_next().await else {
            return Ok(fetched);
        };
        let (index, result) = landed.map_err(|error| {
            Stop::Failed(FetchError::Server(Status::internal(format!(
                "a chunk task failed: {error}"
            ))))
        })?;
        match result {
            Ok(chunk) if is_valid(digest, index, &chunk) => {
                let bytes = chunk.data.len() as u64;
                partial
                    .write(index, chunk.data)
                    .await
                    .map_err(Stop::Failed)?;
                patience.on_progress();
                bad.remove(&index);
                fetched += 1;
                progress.event(name, Event::Chunk { bytes });
            }
            Ok(_) => {
                let attempts = bad.entry(index).or_default();
                *attempts += 1;
                if *attempts >= MAX_BAD_CHUNK {
                    return Err(Stop::Failed(FetchError::Corrupt {
                        chunk: index,
                        attempts: *attempts,
                    }));
                }
                progress.event(
                    name,
                    Event::Note(format!(
                        "chunk {index} failed SHA-256 verification; fetching it again"
                    )),
                );
                queue.push_back((index, Duration::ZERO));
            }
            Err(status) => match judge(status.clone()) {
                Verdict::Retry => {
                    if patience.is_fresh() {
                        progress.event(name, Event::Note(format!("retrying: {status}")));
                    }
                    let delay = patience.on_failure(status).map_err(Stop::Failed)?;
                    queue.push_back((index, delay));
                }
                Verdict::Changed(status) => {
                    return Err(Stop::Changed(status.message().to_owned()));
                }
                Verdict::Fail(error) => return Err(Stop::Failed(error)),
            },
        }
    }
}

/// Whether `chunk` is chunk `index` of the file `digest` describes: the
/// right index, the right length, the right SHA-256.
fn is_valid(digest: &FileDigest, index: u32, chunk: &Chunk) -> bool {
    let (_, len) = digest.chunk_span(index);
    chunk.index == index
        && chunk.data.len() == len
        && digest
            .chunks
            .get(index as usize)
            .is_some_and(|expected| digest::sha256(&chunk.data) == *expected)
}
