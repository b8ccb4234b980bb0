//! The client side: [`list`] a share, and [`get`] files from it — several
//! at once, each chunk verified, resumable, retrying a lost server.
//!
//! `get` connects and runs one `job` per file, a few at once. One file's
//! download: fetch and check its manifest (`manifest`), open its partial
//! file and re-verify what a previous run left (`partial`), fetch the
//! missing chunks through a window of calls in flight (`window`), then
//! check the whole file and rename it into place. A file that changed on
//! the server meanwhile starts over; a server that cannot be reached is
//! retried until the retry period passes without progress (`patience`).
//! What each file came to is in the [`Summary`] (`summary`); why one
//! failed, in its [`FetchError`] (`error`). Settings: [`GetConfig`].

mod config;
mod error;
mod get;
mod job;
mod manifest;
mod partial;
mod patience;
mod summary;
mod window;

pub use config::GetConfig;
pub use error::FetchError;
pub use get::{close, download, get, list};
pub use job::MAX_RESTARTS;
pub use manifest::{MAX_CHUNK_SIZE, MAX_CHUNKS};
pub use summary::{Fetched, Outcome, Summary, human_bytes};
pub use window::MAX_BAD_CHUNK;

/// Why a download stopped before the end.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The file changed on the server: start over with a fresh manifest.
    Changed(String),
    /// The download failed.
    Failed(FetchError),
}
