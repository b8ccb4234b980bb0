//! Deterministic simulation for protowright.
//!
//! protowright's transports are written against the socket traits in
//! `protowright::net`. This crate implements them for turmoil's simulated
//! network ([`Turmoil`]), so the very code that runs on real sockets runs
//! inside a simulation whose time, latency, partitions and crashes a test
//! controls, from one seed.
//!
//! Add it as a dev-dependency and pass [`Turmoil`] wherever your code takes
//! a `protowright::net::Net`:
//!
//! ```no_run
//! use protowright::net::{Net, Stream as _};
//! use protowright_sim::Turmoil;
//! use std::net::{Ipv4Addr, SocketAddr};
//! use tokio::io::AsyncWriteExt;
//!
//! async fn greet<N: Net>(net: N, server: SocketAddr) -> std::io::Result<()> {
//!     let mut stream = net.connect(server).await?;
//!     stream.write_all(b"hello").await
//! }
//!
//! let mut sim = turmoil::Builder::new().rng_seed(7).build();
//! sim.host("server", || async {
//!     let listener = Turmoil.listen((Ipv4Addr::UNSPECIFIED, 9000).into()).await?;
//!     let _ = protowright::net::Listener::accept(&listener).await?;
//!     Ok(())
//! });
//! sim.client("client", async {
//!     greet(Turmoil, (turmoil::lookup("server"), 9000).into()).await?;
//!     Ok(())
//! });
//! sim.run().unwrap();
//! ```
//!
//! # Map
//! - `net`: [`Turmoil`] and its stream, listener and datagram socket types.
//!
//! Know the simulated network's fault model before relying on it: latency
//! draws reorder datagrams whenever the maximum exceeds the minimum; a
//! link's `fail_rate` flaps the whole link rather than dropping single
//! packets; simulated TCP never retransmits, so fault TCP with partitions,
//! hold/release and crashes, not `fail_rate`.

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
