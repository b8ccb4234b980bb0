//! The entry points: connect and download ([`get`]), download over any
//! channel ([`download`]), and [`list`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use protowright::net::Net;
use protowright::rpc::{Channel, Status};
use protowright::{Client, ConnectionState, Transport};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::job::Job;
use super::window::Window;
use super::{FetchError, Fetched, GetConfig, Outcome, Summary};
use crate::pb::{FileInfo, FileShare as _, FileShareClient, ListRequest};
use crate::progress::{Event, Progress};

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

/// Closes `client`'s connection and waits (a second at most) until the
/// server has heard, so it does not hold the connection until it times out
/// (a process that exits right after `Client::close` may never send the
/// close over reliable UDP).
pub async fn close(client: &Client) {
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
    let window = Window {
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
