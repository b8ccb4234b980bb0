//! One file's download from start to end: the manifest, the partial file,
//! the window of chunk calls, the final check — and starting over when the
//! file changed on the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use protowright::rpc::Channel;

use super::partial::{Found, Partial, Target};
use super::patience::Patience;
use super::window::{self, Window};
use super::{FetchError, Fetched, Stop, manifest};
use crate::digest::{self, FileDigest};
use crate::pb::FileShareClient;
use crate::progress::{Event, Progress};

/// How many times a download starts over because the file changed on the
/// server before it gives up.
pub const MAX_RESTARTS: u32 = 3;

/// One file's download.
pub(crate) struct Job<C> {
    pub(crate) share: FileShareClient<C>,
    pub(crate) name: Arc<str>,
    pub(crate) out: PathBuf,
    pub(crate) window: Window,
    pub(crate) retry_for: Duration,
    pub(crate) progress: Arc<dyn Progress>,
}

impl<C: Channel> Job<C> {
    /// Downloads the file; its outcome.
    pub(crate) async fn run(&self) -> Result<Fetched, FetchError> {
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
    fn report(&self, found: &Found, digest: &FileDigest, verified: u64) -> u64 {
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
                    digest::short(&digest.sha256)
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
