//! The authoritative server: seats players through the `Lobby` service,
//! applies their inputs, steps the [`World`](crate::world::World) at a fixed rate, and sends
//! every player a snapshot each tick and the events as they happen.
//!
//! Three kinds of task share one state (`shared`: the world and the seated
//! players) behind a mutex that is never held across an `.await`:
//! - the **ticker** (`ticker`) steps the world, queues the `Scored` events, and
//!   `try_send`s the snapshot to each player (a snapshot that finds the
//!   send buffer full is skipped: the next one supersedes it anyway);
//! - one **seat** task per connection (`seat`, which also serves `Lobby`) reads its inputs, and reports the
//!   player as gone when the connection ends (or closes it when it never
//!   joins);
//! - one **outbox** task per player (`seat`) sends its events in order from a
//!   bounded queue. A player whose queue overflows is removed rather than
//!   let the server's memory grow: that is the bound per player.
//!
//! `settings` holds what can be tuned and the [`Observer`] hooks (how the
//! command line prints joins and the simulation test records what was
//! sent); `game` starts and stops it all.

mod game;
mod seat;
mod settings;
mod shared;
mod ticker;

pub use game::{GameServer, serve, serve_observed};
pub use settings::{Observer, Quiet, Settings};
