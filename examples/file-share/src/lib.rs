//! File sharing on protowright: a server shares a directory; clients list
//! it and download files in chunks, each verified against a manifest of
//! SHA-256 hashes, resumably, over TCP or reliable UDP with the same code.
//!
//! What it shows:
//! - a request/response protocol described once, in
//!   `proto/file-share/v1/file-share.proto`, with every method marked
//!   `NO_SIDE_EFFECTS`, so calls are retried freely across reconnects;
//! - pipelining: a window of chunk calls in flight, not one round trip per
//!   chunk, with memory bounded by the window on both sides;
//! - surviving a lost server: the client keeps retrying, then resumes
//!   from the last verified chunk — and a later run resumes from the
//!   partial file a killed one left;
//! - typed errors a program acts on (`NOT_FOUND`, `INVALID_ARGUMENT`,
//!   `PERMISSION_DENIED`, `FAILED_PRECONDITION` for a changed file);
//! - confinement: names never lead out of the shared directory on the
//!   server, nor out of `--out` on the client.
//!
//! # Map
//!
//! ```text
//! file-share get ── fetch::get ── Client (tcp | udp) ──> server ── share::Share
//!                    │  manifest: pages of chunk hashes, checked       │  catalog: names resolved
//!                    │  window:   chunk calls in flight, verified      │  inside the directory,
//!                    │  partial:  .NAME.part, then rename to NAME      │  digests cached
//! ```
//!
//! - [`pb`]: the generated types, `FileShare` trait, client and server.
//! - [`share`]: the service and [`serve`].
//! - [`fetch`]: [`get`], [`download`] and [`list`], and what they report
//!   ([`Summary`], [`FetchError`]).
//! - [`progress`]: the events a download reports, for progress bars.
//! - [`names`]: the rules for names, checked on both sides.
//! - [`digest`]: SHA-256 of files and chunks.
//!
//! Every function here is generic over `protowright::net::Net`, so the same
//! code runs on real sockets and in a turmoil simulation.

mod blocking;
pub mod digest;
pub mod fetch;
pub mod names;
pub mod progress;
pub mod share;

/// The types and glue generated from `file-share.proto`.
pub mod pb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/file_share.v1.rs"));
}

pub use fetch::{FetchError, Fetched, GetConfig, Outcome, Summary, download, get, list};
pub use progress::{Event, Progress, Quiet};
pub use share::{Running, Share, ShareConfig, ShareStats, StatsSnapshot, serve, serve_service};
