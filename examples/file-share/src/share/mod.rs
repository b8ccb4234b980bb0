//! The server side: the [`Share`] service over one directory (`service`),
//! and [`serve`] to run it on either transport (`serve`); its settings
//! (`config`) and counters (`stats`).
//!
//! Every call resolves its name inside the shared directory first
//! (`catalog`), so a name that is malformed or leads out of it is refused
//! whatever the client asks. A chunk is read, hashed and checked against
//! the file's current digest before it is sent: a file that changed since
//! the client's manifest is reported (`FAILED_PRECONDITION`), never served
//! as a mix of two versions.

mod catalog;
mod config;
mod serve;
mod service;
mod stats;

pub use catalog::MAX_LISTED;
pub use config::{MAX_CHUNK_SIZE, ShareConfig};
pub use serve::{Running, serve, serve_service};
pub use service::{LIST_PAGE, MANIFEST_PAGE, Share};
pub use stats::{ShareStats, StatsSnapshot};
