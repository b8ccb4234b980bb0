//! A real-time game on protowright: an authoritative server ticking at a
//! fixed rate over reliable UDP, and bots that play it.
//!
//! What it shows: delivery semantics chosen in the schema
//! (`proto/game/v1/game.proto`), not in code. The server calls
//! `connection.send(snapshot)` and `connection.send(event)` alike; the
//! schema makes snapshots (and the players' inputs) *unreliable-sequenced*
//! on channel 1 — a lost one is never resent, an old one is never
//! delivered after a newer one — and events *reliable-ordered* on channel
//! 2, each numbered per connection so a gap or repeat would show. The
//! snapshot channel gets the higher priority. The same code runs on real
//! sockets and in a deterministic simulation (`tests/simulation.rs`).
//!
//! # Map
//!
//! ```text
//! Bot / Player ── Lobby.Join (RPC) ──────────────> Seat (server)
//!              ── Input (channel 1, sequenced) ──> World::handle_input
//!                                                  World::step, once per tick
//!              <── Snapshot (channel 1, sequenced, priority 1)
//!              <── Event (channel 2, reliable ordered, numbered)
//! ```
//!
//! - [`world`]: the rules — arena, movement, coins. Pure; no I/O, no clock.
//! - [`server`]: the authoritative server — seats, ticks, snapshots,
//!   events, bounded queues, refusals.
//! - [`player`]: the client side — join, steer, and a [`View`] that checks
//!   what arrives.
//! - [`bots`](mod@bots): players that chase coins and sum up what they saw in one
//!   line ([`Summary`]).
//! - [`pb`]: the types generated from the schema.

pub mod bots;
pub mod player;
pub mod server;
pub mod world;

/// The types, the `Lobby` service and the protocol roots generated from
/// `proto/game/v1/game.proto`.
pub mod pb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/game.v1.rs"));
}

pub use bots::{BotSettings, Summary, bots};
pub use player::{Order, Player, Update, View};
pub use server::{GameServer, Observer, Quiet, Settings, serve};

/// The version of the game protocol this build speaks; a server refuses a
/// client of another.
pub const PROTOCOL_VERSION: u32 = 1;

/// The most players a server seats: with more, a snapshot would no longer
/// fit one datagram (and a lost fragment loses a snapshot whole).
pub const MAX_PLAYERS: usize = 24;

/// The port the command line uses by default.
pub const DEFAULT_PORT: u16 = 7300;
