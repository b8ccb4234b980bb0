//! Chat rooms on protowright: nicknames, rooms, recent history and server
//! push, over TCP or reliable UDP with the same code.
//!
//! What it shows:
//!
//! - a service (`Join`, `Say`, `Leave`, `List` in
//!   `proto/chat/v1/chat.proto`) served per connection with
//!   `Incoming::serve_with(|connection| ...)`, so each connection's service
//!   knows its member;
//! - server push: what happens in a room reaches its members as messages of
//!   the schema's protocol root (`Event`: `Said`, `Joined`, `Left`,
//!   `Missed`), sent with `Connection::send` and read with
//!   `Connection::recv`; their delivery (reliable, ordered, one channel) is
//!   set in the schema, not in code;
//! - a slow reader that cannot hold anyone up: each member has a bounded
//!   queue on the server that drops its oldest event when full and then
//!   tells the member how many it missed (the `outbox` module);
//! - a client that survives reconnects: it joins again and takes its
//!   nickname back with a secret, even before the server has noticed that
//!   the old connection died;
//! - the same code over real sockets and in a deterministic simulation: the
//!   server, the client and the bots are generic over `protowright::net::Net`.
//!
//! # Map
//!
//! ```text
//! chat.proto ── build.rs ──> pb (types, Chat trait, ChatClient, ChatServer)
//! client: Session::say/join/leave/list ──> ChatClient ──> connection ──> server
//! server: Service (one per connection) ──> Lobby (rooms, nicknames, history)
//!           Lobby ──> each member's Outbox (bounded) ──> pump ──> Connection::send
//! client: Connection::recv::<Event>() ──> driver ──> Updates::next()
//! ```
//!
//! - `names`: what a nickname, a room name and a line may be.
//! - `lobby`: the server's state and rules; pure, under one lock.
//! - `outbox`: a member's bounded queue and its drop-oldest policy.
//! - `server`: [`serve`], the service, the pump and the disconnect watcher.
//! - `session`: [`Session`], the reconnecting client, and its [`Update`]s.
//! - `bots`: [`bots`], a measured crowd, summed up in one [`Summary`] line.

pub mod pb {
    //! The types and glue generated from `proto/chat/v1/chat.proto`.
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/chat.v1.rs"));
}

mod bots;
mod lobby;
pub mod names;
mod outbox;
mod server;
mod session;

pub use bots::{BotsOptions, Summary, bots};
pub use lobby::{Limits, LobbyStats};
pub use outbox::QueueStats;
pub use server::{Running, Service, serve};
pub use session::{ClientOptions, ConnectError, Session, Update, Updates};

/// The address the command line listens on and connects to by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7400";

/// The descriptor set of the chat's schema and protowright's envelope, for
/// clients in other languages (see `tests/python/chat_client.py`).
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat.descriptors.bin"));
