//! The client side: [`list`] a share, and [`get`] files from it — several
//! at once, each chunk verified, resumable, retrying a lost server.
//!
//! One file's download: fetch and check its manifest (`manifest`), open
//! its partial file and re-verify what a previous run left (`partial`),
//! fetch the missing chunks through a window of calls in flight
//! (`window`), then check the whole file and rename it into place. A
//! file that changed on the server meanwhile starts over; a server that
//! cannot be reached is retried until the retry period passes without
//! progress (`patience`).

mod error;
mod manifest;
mod partial;
mod patience;
mod summary;
mod window;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use protowright::net::Net;
use protowright::rpc::{Channel, Status};
use protowright::{Backoff, Client, ClientConfig, ConnectionState, Transport};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use error::FetchError;
pub use manifest::{MAX_CHUNK_SIZE, MAX_CHUNKS};
pub use summary::{Fetched, Outcome, Summary, human_bytes};
pub use window::MAX_BAD_CHUNK;

use crate::pb::{FileInfo, FileShare as _, FileShareClient, ListRequest};
use crate::progress::{Event, Progress};
use partial::{Found, Partial, Target};
use patience::Patience;

/// How many times a download starts over because the file changed on the
/// server before it gives up.
pub const MAX_RESTARTS: u32 = 3;

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
    /// size (at most [`MAX_CHUNK_SIZE`]), this bounds the chunk data held.
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

/// Why a download stopped before the end.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The file changed on the server: start over with a fresh manifest.
    Changed(String),
    /// The download failed.
    Failed(FetchError),
}

/// Connects to the share at `server` and downloads `names` into `out`
/// (see [`download`]). Fails only when the server cannot be reached at
/// all; each file's outcome is in the summary.
pub async fn get<N: Net>(
    net: N,
    transport: Transport,
    server: SocketAddr,
    names: &[String],
    out: &Path,
    config: GetConfig,
    progress: Arc<dyn Progress>,
) -> Result<Summary, protowright::Error> {
    let client = Client::connect(net, transport, server, config.client.clone()).await?;
    let watcher = tokio::spawn(watch(client.watch_state(), server, Arc::clone(&progress)));
    let share = FileShareClient::new(client.clone()).with_timeout(config.call_timeout);
    let summary = download(&share, names, out, &config, progress).await;
    watcher.abort();
    close(&client).await;
    Ok(summary)
}

/// Closes the client's connection and waits (a moment at most) until the
/// server has heard, so it does not hold the connection until it times out.
async fn close(client: &Client) {
    const POLITE: Duration = Duration::from_secs(1);
    let live = client.stats().connection.is_some();
    let connection = match live {
        true => tokio::time::timeout(POLITE, client.connection())
            .await
            .ok()
            .and_then(Result::ok),
        false => None,
    };
    client.close();
    if let Some(connection) = connection {
        let _ = tokio::time::timeout(POLITE, connection.closed()).await;
    }
}

/// Reports each loss of the connection, and each reconnect.
async fn watch(
    mut states: watch::Receiver<ConnectionState>,
    server: SocketAddr,
    progress: Arc<dyn Progress>,
) {
    let mut lost = false;
    while states.changed().await.is_ok() {
        let state = states.borrow_and_update().clone();
        match state {
            ConnectionState::Waiting { last_error, .. } if !lost => {
                lost = true;
                progress.connection(&format!(
                    "lost the connection to {server} ({last_error}); reconnecting"
                ));
            }
            ConnectionState::Connected if lost => {
                lost = false;
                progress.connection(&format!("reconnected to {server}"));
            }
            _ => {}
        }
    }
}

/// Downloads `names` into `out` through any channel to a share, up to
/// `config.parallel` files at once. Asking twice for one name fetches it
/// once.
pub async fn download<C: Channel>(
    share: &FileShareClient<C>,
    names: &[String],
    out: &Path,
    config: &GetConfig,
    progress: Arc<dyn Progress>,
) -> Summary {
    let started = Instant::now();
    let mut seen = BTreeSet::new();
    let names: Vec<String> = names.iter().filter(|n| seen.insert(*n)).cloned().collect();
    let files = Arc::new(Semaphore::new(config.parallel.max(1)));
    let window = window::Window {
        per_file: config.per_file,
        permits: Arc::new(Semaphore::new(config.window.max(1))),
    };
    let mut tasks = JoinSet::new();
    for (order, name) in names.iter().enumerate() {
        let job = Job {
            share: share.clone(),
            name: Arc::from(name.as_str()),
            out: out.to_owned(),
            window: window.clone(),
            retry_for: config.retry_for,
            progress: Arc::clone(&progress),
        };
        let files = Arc::clone(&files);
        tasks.spawn(async move {
            let _turn = files.acquire_owned().await;
            let result = job.run().await;
            match &result {
                Ok(_) => job.progress.event(&job.name, Event::Done),
                Err(error) => job
                    .progress
                    .event(&job.name, Event::Failed(error.to_string())),
            }
            (order, result)
        });
    }
    let mut results: Vec<Option<Result<Fetched, FetchError>>> =
        names.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((order, result)) = joined {
            results[order] = Some(result);
        }
    }
    let files = names
        .into_iter()
        .zip(results)
        .map(|(name, result)| Outcome {
            name,
            result: result.unwrap_or_else(|| {
                Err(FetchError::Server(Status::internal(
                    "the download task failed",
                )))
            }),
        })
        .collect();
    Summary {
        files,
        elapsed: started.elapsed(),
    }
}

/// Lists every file the share holds, page by page.
pub async fn list<C: Channel>(share: &FileShareClient<C>) -> Result<Vec<FileInfo>, Status> {
    let mut files = Vec::new();
    let mut offset = 0;
    // Bounded: a server cannot keep a client paging forever.
    for _ in 0..=crate::share::MAX_LISTED / crate::share::LIST_PAGE {
        let page = share.list(ListRequest { offset }).await?;
        files.extend(page.files);
        if page.next_offset <= offset {
            break;
        }
        offset = page.next_offset;
    }
    Ok(files)
}

/// One file's download.
struct Job<C> {
    share: FileShareClient<C>,
    name: Arc<str>,
    out: PathBuf,
    window: window::Window,
    retry_for: Duration,
    progress: Arc<dyn Progress>,
}

impl<C: Channel> Job<C> {
    async fn run(&self) -> Result<Fetched, FetchError> {
        let (out, name) = (self.out.clone(), self.name.to_string());
        let target = crate::blocking::run(move || Target::prepare(&out, &name))
            .await
            .map_err(FetchError::local("preparing the download"))??;
        let progress = &*self.progress;
        let mut patience = Patience::new(self.retry_for);
        let mut restarts = 0;
        loop {
            let digest =
                match manifest::fetch(&self.share, &self.name, &mut patience, progress).await {
                    Ok(digest) => Arc::new(digest),
                    Err(stop) => {
                        self.on_change(stop, &mut restarts)?;
                        continue;
                    }
                };
            let (mut partial, found) = Partial::open(target.clone(), Arc::clone(&digest)).await?;
            let reused = self.report(&found, &digest, partial.verified_bytes());
            let fetched = window::fetch_missing(
                &self.share,
                &self.name,
                &digest,
                &mut partial,
                &self.window,
                &mut patience,
                progress,
            )
            .await;
            match fetched {
                Ok(chunks_fetched) => {
                    partial.finish().await?;
                    tracing::debug!(name = %self.name, path = %target.path().display(), "verified");
                    return Ok(Fetched {
                        size: digest.size,
                        sha256: digest.sha256,
                        chunks_fetched,
                        chunks_reused: reused,
                        restarts,
                    });
                }
                Err(stop) => self.on_change(stop, &mut restarts)?,
            }
        }
    }

    /// A stop: a change starts over (up to [`MAX_RESTARTS`] times), a
    /// failure ends the download.
    fn on_change(&self, stop: Stop, restarts: &mut u32) -> Result<(), FetchError> {
        match stop {
            Stop::Changed(why) if *restarts < MAX_RESTARTS => {
                *restarts += 1;
                self.note(format!("{why}; starting over"));
                Ok(())
            }
            Stop::Changed(_) => Err(FetchError::KeptChanging(*restarts + 1)),
            Stop::Failed(error) => Err(error),
        }
    }

    /// Says what the partial download on disk gave; returns the chunks
    /// reused.
    fn report(&self, found: &Found, digest: &crate::digest::FileDigest, verified: u64) -> u64 {
        let total = digest.chunks.len();
        let reused = match found {
            Found::Nothing => 0,
            Found::Resumed { chunks } => {
                self.note(format!(
                    "resuming: {chunks} of {total} chunks already on disk verified"
                ));
                *chunks
            }
            Found::Changed { was } => {
                self.note(format!(
                    "changed on the server since the partial download (was version {was}, now {}); starting over",
                    crate::digest::short(&digest.sha256)
                ));
                0
            }
            Found::Unusable => {
                self.note("a partial file without its manifest was found; starting over".into());
                0
            }
        };
        self.progress.event(
            &self.name,
            Event::Started {
                size: digest.size,
                verified,
            },
        );
        reused
    }

    fn note(&self, text: String) {
        self.progress.event(&self.name, Event::Note(text));
    }
}
