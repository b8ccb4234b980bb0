//! protowright's own simulation suites, written with protowright-sim the
//! way a user writes theirs: the real server and client code, on the
//! simulated network with the fault layer, under drawn fault schedules,
//! judged by the toolkit's checkers.
//!
//! - [`traffic`]: the standard scenario — numbered messages on every
//!   delivery and RPC calls, client to server, on either transport.
//! - [`bulk`]: a multi-megabyte transfer that must arrive byte-identical.
//! - [`scenarios`]: the named scenarios `cargo xtask sim` runs in-process.

pub mod bulk;
pub mod scenarios;
pub mod traffic;
