//! Deterministic fault-injection testing for protocols built on protowright.
//!
//! Add `protowright-sim` as a dev-dependency and your own servers and
//! clients — the very code that runs on real sockets — run inside a
//! simulated network that this crate breaks on purpose: packets lost,
//! duplicated, corrupted, cut short, reordered, held back by a bandwidth
//! cap or refused by a small path MTU; links partitioned and held; hosts
//! crashed and restarted. Every one of those choices comes from one seed,
//! so a failing run is replayed exactly, and a failing case is shrunk to a
//! short schedule before you read it.
//!
//! # A test in a few lines
//!
//! The README's greeter under drawn faults: `tests/under_faults.rs` of
//! `examples/hello` (the crate the README's tutorial builds), run in CI:
//!
//! ```ignore
//! use hello::{Host, pb::*};
//! use protowright::Transport::Udp;
//! use protowright_sim::{Cases, Schedule, Sim, Space, check};
//! use std::time::Duration;
//!
//! #[test]
//! fn every_greeting_is_answered_correctly_under_faults() {
//!     let faults = Space::new(&["server", "client"], Duration::from_secs(3)).restart(&["server"]);
//!     Cases::new(Schedule::strategy(faults), 16).run(|case| {
//!         Sim::for_case(case)
//!             .host("server", |ctx| async move {
//!                 ctx.serve(Udp, 9000, GreeterServer::new(Host)).await
//!             })
//!             .client("client", |ctx| async move {
//!                 let client = ctx.client(Udp, ctx.addr("server", 9000)).await?;
//!                 let greeter = GreeterClient::new(client).with_timeout(Duration::from_millis(500));
//!                 for n in 0..60 {
//!                     let name = format!("guest {n}");
//!                     let call = ctx.call(Some(Duration::from_millis(500)));
//!                     let reply = greeter.say_hello(HelloRequest { name: name.clone() }).await;
//!                     call.outcome(&reply, |r| r.message == format!("Hello, {name}!"));
//!                     tokio::time::sleep(Duration::from_millis(150)).await;
//!                 }
//!                 Ok(())
//!             })
//!             .check(check::calls())
//!             .run()
//!     });
//! }
//! ```
//!
//! Each case draws a seed and a fault schedule; the server and client run
//! on two simulated hosts; the client records every call in the run's
//! [`History`]; after the run, [`check::calls`] holds every call to its
//! contract (its own answer or a typed error, never late, and success once
//! the faults have healed). On failure the test panics with the seed, the
//! shrunk schedule, the first violation with the history around it, and
//! the command that replays it (`PROTOWRIGHT_SEED=<seed> cargo test ...`).
//!
//! # Map
//!
//! - [`Sim`] (with [`Ctx`]): one run — hosts, clients, schedule, checkers.
//!   `Ctx::serve`/`Ctx::server`/`Ctx::client` give your code a server and a client with
//!   the simulation's settings; `Ctx::net` the network for anything else.
//! - [`Schedule`], [`Event`], [`Space`]: what goes wrong and when; drawn by
//!   proptest in the manner of swarm testing, or written by hand.
//! - [`Cases`]: many seeded cases, shrinking, replay, and a [`Summary`]
//!   whose coverage proves the faults and recovery paths fired.
//! - [`History`]: what your code records (messages sent and delivered,
//!   calls, writes and reads, bounded quantities, coverage counters); its
//!   trace hash pins a run.
//! - [`check`]: the checkers — [`check::delivery`] (each delivery's
//!   guarantee per stream and connection, liveness after the heal),
//!   [`check::unreliable_share`], [`check::calls`], [`check::acked_writes`],
//!   [`check::bounded`], [`check::custom`].
//! - [`fault`]: the datagram fault model ([`Faults`], `fault::Link`) and
//!   [`Faulty`], the layer that puts it in front of any
//!   `protowright::net::Net` — turmoil's, or real sockets (real loss on
//!   loopback).
//! - [`defaults`]: transport settings sized for simulated runs.
//! - [`Turmoil`]: the simulated network as a `protowright::net::Net`.
//!
//! # What the simulation does, and what this crate adds
//!
//! turmoil runs each host on a single-threaded tokio runtime with paused
//! time, on one thread, in a fixed order: so `tokio::time` is virtual and a
//! run is deterministic for a given seed. Its network delivers TCP and UDP
//! with a latency drawn per message (a wide range reorders UDP), can
//! partition and hold links, and crash and restart hosts. It does not lose,
//! duplicate, corrupt or truncate single datagrams, has no size limit and
//! no bandwidth; its `fail_rate` flaps a whole link rather than dropping
//! packets; and its TCP never retransmits, so a lost segment would hang a
//! stream. Hence:
//!
//! - datagram faults come from this crate's [`fault`] layer, per direction
//!   of each path, seeded; TCP streams pass through it untouched and are
//!   faulted with partitions, holds and crashes ([`Space::streams_only`]);
//! - [`Sim`] keeps the network's latency fixed unless the schedule changes
//!   it, so a healed network does not reorder.
//!
//! # Two phases
//!
//! A schedule's faults all lie before its `heal_at`; then [`Sim`] heals
//! everything (clean datagrams, links repaired and released, fixed latency,
//! crashed hosts restarted). Checkers judge **safety** over the whole run
//! and **liveness** after the heal: what was pending arrives and calls
//! succeed once the liveness bound has passed ([`Sim::liveness_bound`],
//! default 5 s; [`Ctx::settled`] waits for it).
//!
//! # Determinism
//!
//! One root seed drives turmoil's `rng_seed`, a fixed simulated epoch, the
//! fault layer, and — through `Net::fill_random`, which [`Turmoil`] answers
//! from the seeded generator — every random choice protowright and your code
//! make (connection ids, reconnect jitter). Keep your own code deterministic
//! the same way: `tokio::time` only, randomness from the `Net`, `biased;` in
//! `select!`, no iteration over hashed collections. A suite can assert it:
//! run a seed twice and compare [`Report::trace_hash`].
//!
//! tokio has randomness of its own: which branch of a `select!` without
//! `biased;` is polled first, and which of a `watch` channel's waiters wakes
//! first. turmoil seeds it from the run's seed only when tokio is built with
//! `--cfg tokio_unstable`; otherwise tokio seeds it from the system, and two
//! waiters of one channel may wake in a different order on each run. Add
//! it to your workspace's `.cargo/config.toml`, as protowright's own does:
//!
//! ```toml
//! [build]
//! rustflags = ["--cfg", "tokio_unstable"]
//! ```
//!
//! # Environment
//!
//! `PROTOWRIGHT_SEED` replays one seed; `PROTOWRIGHT_CASES` runs more cases
//! than the suite's default; `PROTOWRIGHT_FIRST_SEED` moves the window.

mod cases;
pub mod check;
pub mod defaults;
pub mod fault;
pub mod history;
mod net;
mod random;
pub mod schedule;
mod sim;

pub use cases::{Case, Cases, Summary};
pub use check::{Check, Violation};
pub use fault::{FaultControl, Faults, Faulty};
pub use history::History;
pub use net::{SimDatagram, SimListener, SimStream, Turmoil};
pub use random::reseed;
pub use schedule::{Event, Schedule, Space};
pub use sim::{Cause, Ctx, Failure, HostResult, Report, Sim, SimNet};
