//! The schema protowright tests itself with, compiled by protowright-build
//! the way a user's crate compiles its own (`proto/testing/v1/testing.proto`):
//!
//! - the `Probe` service, whose methods exercise a session (echo, sleep,
//!   fail, block until released, double, an overloaded handler, push
//!   messages to the caller), and [`Probe`], its implementation that counts
//!   what its handlers did;
//! - the `Absent` service, which nothing serves (to call a method a peer
//!   does not know);
//! - numbered traffic on every delivery (`Traffic`, the protocol root), and
//!   [`Stream`] to make and read it.
//!
//! A schema-first framework tests itself through its own code generation:
//! the transport, session and simulation suites use these generated types
//! and clients, never hand-made method ids.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use protowright::rpc::{Code, Status};
use protowright::{Connection, Delivery, MessageInfo};
use tokio::sync::Notify;

/// The types and glue generated from `testing.proto`.
pub mod pb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/testing.v1.rs"));
}

use pb::{Burst, Nap, Payload, traffic::Body};

/// The `Probe` service: counts its handlers as they run, finish, or are
/// dropped unfinished (cancelled or past their deadline), and records the
/// ids `Echo` was called with. Clones share the counters.
///
/// A probe made with [`pushing_to`](Self::pushing_to) also holds a
/// connection, to which `Push` sends messages: serve it with
/// `Incoming::serve_with(|connection| ProbeServer::new(probe.pushing_to(connection)))`.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    echoed: Arc<Mutex<Vec<u64>>>,
    release: Arc<Notify>,
    connection: Option<Connection>,
}

impl Probe {
    /// A probe sharing this one's counters whose `Push` sends to
    /// `connection` (the connection it serves, for server push). It holds
    /// the connection, so it keeps it open until either side closes it.
    pub fn pushing_to(&self, connection: &Connection) -> Self {
        Self {
            connection: Some(connection.clone()),
            ..self.clone()
        }
    }

    /// The ids of the `Echo` requests handled, in the order handled.
    pub fn echoed(&self) -> Vec<u64> {
        self.echoed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Handlers running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most handlers that ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Handlers that ran to the end.
    pub fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }

    /// Handlers dropped before the end (cancelled, or past the deadline).
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Lets every `Block` call waiting now answer.
    pub fn release_blocked(&self) {
        self.release.notify_waiters();
    }
}

/// Counts a handler as running until it is dropped, finished or not.
struct Running<'a> {
    probe: &'a Probe,
    finished: bool,
}

impl<'a> Running<'a> {
    fn start(probe: &'a Probe) -> Self {
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.peak.fetch_max(now, Ordering::SeqCst);
        Self {
            probe,
            finished: false,
        }
    }

    fn finish<T>(mut self, outcome: T) -> T {
        self.finished = true;
        outcome
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.probe.running.fetch_sub(1, Ordering::SeqCst);
        let counter = if self.finished {
            &self.probe.finished
        } else {
            &self.probe.dropped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl pb::Probe for Probe {
    async fn echo(&self, request: Payload) -> Result<Payload, Status> {
        let running = Running::start(self);
        self.echoed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.id);
        running.finish(Ok(request))
    }

    async fn sleep(&self, request: Nap) -> Result<Payload, Status> {
        let running = Running::start(self);
        tokio::time::sleep(Duration::from_millis(request.millis)).await;
        running.finish(Ok(Payload {
            id: request.millis,
            data: Bytes::from_static(b"slept"),
        }))
    }

    async fn fail(&self, _request: Payload) -> Result<Payload, Status> {
        Running::start(self).finish(Err(Status::new(
            Code::FailedPrecondition,
            "the probe always fails",
        )))
    }

    async fn block(&self, request: Payload) -> Result<Payload, Status> {
        let running = Running::start(self);
        self.release.notified().await;
        running.finish(Ok(request))
    }

    async fn double(&self, request: Payload) -> Result<Payload, Status> {
        let data = Bytes::from([&request.data[..], &request.data[..]].concat());
        Running::start(self).finish(Ok(Payload {
            id: request.id,
            data,
        }))
    }

    async fn overloaded(&self, _request: Payload) -> Result<Payload, Status> {
        Running::start(self).finish(Err(Status::unavailable("the handler is overloaded")))
    }

    async fn push(&self, request: Burst) -> Result<Payload, Status> {
        let running = Running::start(self);
        let Some(connection) = &self.connection else {
            return running.finish(Err(Status::new(
                Code::FailedPrecondition,
                "this probe holds no connection to push to (make it with `pushing_to`)",
            )));
        };
        let size = usize::try_from(request.size).unwrap_or(usize::MAX);
        for seq in 0..request.count {
            if let Err(error) = connection.send(Stream::OrderedA.message(seq, size)).await {
                return running.finish(Err(Status::unavailable(error.to_string())));
            }
        }
        running.finish(Ok(Payload {
            id: request.count,
            data: Bytes::new(),
        }))
    }
}

/// The padding byte of message `seq` of `flow`: wrong bytes show corruption.
fn pad(flow: u64, seq: u64) -> u8 {
    ((flow.wrapping_mul(31) + seq) % 251) as u8
}

/// One stream of numbered traffic: a delivery on a channel, as the
/// schema's options for its message type give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// `OrderedA`: reliable ordered, channel 0.
    OrderedA,
    /// `OrderedB`: reliable ordered, channel 1.
    OrderedB,
    /// `Unordered`: reliable unordered.
    Unordered,
    /// `Unreliable`: at most once.
    Unreliable,
    /// `Sequenced`: unreliable sequenced, channel 2.
    Sequenced,
}

impl Stream {
    /// Every stream.
    pub const ALL: [Stream; 5] = [
        Stream::OrderedA,
        Stream::OrderedB,
        Stream::Unordered,
        Stream::Unreliable,
        Stream::Sequenced,
    ];

    /// The delivery its schema options give it.
    pub fn delivery(self) -> Delivery {
        match self {
            Self::OrderedA => pb::OrderedA::DELIVERY,
            Self::OrderedB => pb::OrderedB::DELIVERY,
            Self::Unordered => pb::Unordered::DELIVERY,
            Self::Unreliable => pb::Unreliable::DELIVERY,
            Self::Sequenced => pb::Sequenced::DELIVERY,
        }
    }

    /// The stream's name, as histories and reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::OrderedA => "OrderedA",
            Self::OrderedB => "OrderedB",
            Self::Unordered => "Unordered",
            Self::Unreliable => "Unreliable",
            Self::Sequenced => "Sequenced",
        }
    }

    /// Message `seq` of this stream, padded to about `size` bytes.
    pub fn message(self, seq: u64, size: usize) -> pb::Traffic {
        self.message_in(0, seq, size)
    }

    /// Message `seq` of this stream on the sending connection `flow`,
    /// padded to about `size` bytes.
    pub fn message_in(self, flow: u64, seq: u64, size: usize) -> pb::Traffic {
        let padding = Bytes::from(vec![pad(flow, seq); size]);
        let body = match self {
            Self::OrderedA => Body::OrderedA(pb::OrderedA { seq, padding, flow }),
            Self::OrderedB => Body::OrderedB(pb::OrderedB { seq, padding, flow }),
            Self::Unordered => Body::Unordered(pb::Unordered { seq, padding, flow }),
            Self::Unreliable => Body::Unreliable(pb::Unreliable { seq, padding, flow }),
            Self::Sequenced => Body::Sequenced(pb::Sequenced { seq, padding, flow }),
        };
        pb::Traffic { body: Some(body) }
    }

    /// Which stream a received message belongs to, its number, and whether
    /// its padding is what the sender wrote (not corrupted). `None` for a
    /// message of no stream.
    pub fn read(message: &pb::Traffic) -> Option<(Stream, u64, bool)> {
        Self::read_flow(message).map(|(stream, _, seq, intact)| (stream, seq, intact))
    }

    /// Like [`read`](Self::read), with the sending connection's flow too.
    pub fn read_flow(message: &pb::Traffic) -> Option<(Stream, u64, u64, bool)> {
        let (stream, flow, seq, padding) = match message.body.as_ref()? {
            Body::OrderedA(m) => (Self::OrderedA, m.flow, m.seq, &m.padding),
            Body::OrderedB(m) => (Self::OrderedB, m.flow, m.seq, &m.padding),
            Body::Unordered(m) => (Self::Unordered, m.flow, m.seq, &m.padding),
            Body::Unreliable(m) => (Self::Unreliable, m.flow, m.seq, &m.padding),
            Body::Sequenced(m) => (Self::Sequenced, m.flow, m.seq, &m.padding),
            Body::Small(_) | Body::Chunk(_) => return None,
        };
        let intact = padding.iter().all(|&byte| byte == pad(flow, seq));
        Some((stream, flow, seq, intact))
    }
}
