//! Hooks for the fuzz targets under `fuzz/` and for the fuzz smoke test
//! (`tests/fuzz_smoke.rs`): each drives real endpoints with a fuzzer's
//! bytes and must never panic, whatever the bytes.
//!
//! - `server`: a listening server fed arbitrary datagrams from one address
//!   (the `udp_endpoint` target).
//! - `session`: an established, encrypted connection fed arbitrary frames
//!   sealed under the real keys, so they get past packet protection (the
//!   `udp_session` target).
//! - `handshake`: a client and a server in the middle of their handshake,
//!   with a fuzzer on the path that drops, alters and forges `Initial`,
//!   `Retry`, `Handshake`, `Refuse` and `Reset` packets (the
//!   `udp_handshake` target).
//! - `pair` and `input`: the two endpoints in memory, stepped in virtual
//!   time, and the reader that turns any bytes into a script.
//!
//! Everything is seeded and timed from the input: the same bytes always
//! run the same way, so a crash replays.

mod handshake;
mod input;
mod pair;
mod server;
mod session;

#[cfg(test)]
mod tests;

pub use handshake::fuzz_handshake;
pub use server::fuzz_endpoint;
pub use session::fuzz_session;
