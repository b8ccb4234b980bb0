//! An RPC session: calls in both directions, and protocol messages, over
//! one message link.
//!
//! One task drives the link. Its read side decodes envelopes and routes
//! them (requests to handlers, responses to waiting callers, protocol
//! messages to the application's inbox), its write side gathers queued
//! envelopes into batched writes, and a keepalive side sends heartbeats and
//! ends a connection whose peer fell silent. Everything it holds is bounded
//! by [`Config`]. When the link ends, every waiting call fails with the
//! reason and every running handler is stopped; when the peer broke the
//! protocol, it is first told why with a GOAWAY.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::Owner;
use super::handler;
use super::keepalive::{Moment, Timeouts, Verdict};
use super::link::{Link, LinkReader, LinkWriter};
use super::one_way::OneWays;
use super::outbox::Batch;
use super::shared::Shared;
use super::stats::Counters;
use super::stream::StreamLink;
use super::wire::{self, decode_envelope, is_traffic};
use super::{Client, Config, Service, Stats, Status};
use crate::error::ConnectionError;
use crate::v1::{Envelope, Kind};

/// The room for protocol messages a read loop keeps between reads.
const RETAINED_BATCH: usize = 256;

/// How long a session that is closing because the peer broke the protocol
/// waits for its GOAWAY (which says why) to be written.
const FAREWELL: Duration = Duration::from_secs(1);

/// A running RPC session; the handle that owns it.
///
/// The session runs until the peer closes the link, an error ends it,
/// [`close`](Self::close) is called, or this handle and every [`Client`]
/// taken from it are dropped.
#[derive(Debug)]
pub struct Session {
    client: Client,
}

impl Session {
    /// Starts a session over a byte stream `io` (length-delimited envelopes,
    /// the TCP wire format), serving incoming calls with `service`.
    ///
    /// `peer` names the other end in errors and logs (an address, say).
    /// Must be called inside a tokio runtime: the session runs on a task of
    /// its own.
    pub fn spawn<IO, S>(io: IO, peer: impl Into<String>, service: S, config: Config) -> Self
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
        S: Service,
    {
        let peer = peer.into();
        let link = StreamLink::new(io, peer.clone(), &config);
        Pending::new(peer, config).start(link, service)
    }

    /// A handle for making calls on this session. Clones share the session.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Who is on the other end.
    pub fn peer(&self) -> &str {
        self.client.peer()
    }

    /// Asks the session to end: envelopes already queued are written, then
    /// the link's sending side is shut down. Calls still waiting fail with
    /// `UNAVAILABLE`.
    pub fn close(&self) {
        self.client.close();
    }

    /// Tells the peer this side takes no new calls (`status` says why), and
    /// refuses any that arrive from now on. Calls in flight either way still
    /// complete; the session then closes by itself. For graceful shutdown.
    pub async fn go_away(&self, status: Status) {
        self.client.go_away(status).await;
    }

    /// The connection's counters now.
    pub fn stats(&self) -> Stats {
        self.client.stats()
    }

    /// Waits until the session ends, and says why.
    ///
    /// `Ok(())` means it ended cleanly: the peer closed the link on a frame
    /// boundary, or this side closed it.
    pub async fn closed(self) -> Result<(), ConnectionError> {
        self.client.closed().await
    }
}

/// A session whose state exists but whose task has not started: its
/// [`Client`] can be handed out first (so a service may be built around
/// the connection it serves).
#[derive(Debug)]
pub(crate) struct Pending {
    shared: Arc<Shared>,
    close: Arc<Notify>,
    client: Client,
}

impl Pending {
    pub(crate) fn new(peer: String, config: Config) -> Self {
        let shared = Arc::new(Shared::new(peer, config));
        let close = Arc::new(Notify::new());
        let owner = Arc::new(Owner {
            close: Arc::clone(&close),
        });
        let client = Client::new(Arc::clone(&shared), owner);
        Self {
            shared,
            close,
            client,
        }
    }

    /// The handle the session will be driven for.
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// Starts the session's task over `link`, serving with `service`.
    pub(crate) fn start<L: Link, S: Service>(self, link: L, service: S) -> Session {
        let driver = Driver {
            shared: Arc::clone(&self.shared),
            service: Arc::new(service),
            one_ways: OneWays::default(),
            failure: Mutex::new(None),
            peer_finished: std::sync::atomic::AtomicBool::new(false),
        };
        let close = self.close;
        let shared = self.shared;
        tokio::spawn(async move {
            let outcome = driver.run(link, close).await;
            shared.record_outcome(outcome);
        });
        Session {
            client: self.client,
        }
    }
}

/// The session's task: reads and writes the link until it ends.
struct Driver<S> {
    shared: Arc<Shared>,
    service: Arc<S>,
    /// The one-way messages' worker, started at the first one.
    one_ways: OneWays,
    /// Why the read side ended the session, when it first told the peer.
    failure: Mutex<Option<ConnectionError>>,
    /// Set when the peer ended its sending side cleanly: the session then
    /// answers what it asked and closes, and a write that fails after
    /// that (the peer closed the whole connection) is no error.
    peer_finished: std::sync::atomic::AtomicBool,
}

impl<S: Service> Driver<S> {
    async fn run<L: Link>(self, link: L, close: Arc<Notify>) -> Result<(), ConnectionError> {
        let (reader, writer) = link.split();
        let outcome = tokio::select! {
            biased;
            written = self.write_loop(writer, &close) => written,
            read = self.read_side(reader, &close) => read,
            kept = self.keepalive(&close) => kept,
        };
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let finished = self
            .peer_finished
            .load(std::sync::atomic::Ordering::Relaxed);
        let outcome = if finished {
            outcome.or(Ok(()))
        } else {
            outcome
        };
        let result = failure.map_or(outcome, Err);
        if result.is_ok() {
            self.finish_one_ways().await;
        }
        let status = match &result {
            Ok(()) => self.shared.clean_close_status(),
            Err(error) => Status::unavailable(error.to_string()),
        };
        self.shared.shut_down(status, result.is_ok());
        result
    }

    /// After a clean end, lets the one-way worker handle what was already
    /// delivered (up to the default timeout): those messages arrived whole,
    /// so they are not dropped.
    async fn finish_one_ways(&self) {
        let limit = self
            .shared
            .config()
            .default_timeout
            .unwrap_or(Duration::from_secs(30));
        let handled = async {
            while self.shared.serving.has_one_ways() {
                tokio::select! {
                    biased;
                    () = self.shared.call_finished() => {}
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        };
        if tokio::time::timeout(limit, handled).await.is_err() {
            tracing::warn!(
                peer = self.shared.peer(),
                ?limit,
                "one-way handlers did not finish after the connection closed"
            );
        }
    }

    /// Sends heartbeats, ends the connection when the peer falls silent, and
    /// closes it cleanly when idle or when a GOAWAY has drained it.
    async fn keepalive(&self, close: &Notify) -> Result<(), ConnectionError> {
        let config = self.shared.config();
        let timeouts = Timeouts {
            heartbeat: config.heartbeat_interval,
            dead_peer: config.dead_peer_timeout,
            idle: config.idle_timeout,
        };
        loop {
            if self.shared.is_drained() {
                close.notify_one();
                return std::future::pending().await;
            }
            let activity = &self.shared.activity;
            match timeouts.check(activity, Instant::now(), self.shared.is_busy()) {
                Verdict::Dead(silence) => {
                    return Err(ConnectionError::Timeout {
                        peer: self.shared.peer().to_owned(),
                        silence,
                    });
                }
                Verdict::Idle(idle) => {
                    tracing::debug!(
                        peer = self.shared.peer(),
                        ?idle,
                        "closing an idle connection"
                    );
                    close.notify_one();
                    return std::future::pending().await;
                }
                Verdict::Ping => {
                    activity.mark_ping();
                    // A full queue means writes are pending anyway; the
                    // write-stall timeout covers a peer that stopped reading.
                    let _ = self.shared.try_enqueue(wire::control(Kind::Ping, 0));
                }
                Verdict::SleepUntil(at) => {
                    tokio::select! {
                        biased;
                        () = self.shared.call_finished() => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
            }
        }
    }

    /// Reads until the link ends. When the peer broke the protocol, tells it
    /// why (a GOAWAY carrying the reason) and lets the writer send that
    /// before the session ends.
    async fn read_side<R: LinkReader>(
        &self,
        reader: R,
        close: &Notify,
    ) -> Result<(), ConnectionError> {
        let error = match self.read_loop(reader).await {
            Ok(()) => {
                self.peer_finished
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                // Boxed: rare, and its timer would otherwise take room in
                // every connection's task.
                return Box::pin(self.answer_then_close(close)).await;
            }
            Err(error) => error,
        };
        let Some(farewell) = error.farewell() else {
            return Err(error);
        };
        tracing::debug!(peer = self.shared.peer(), %error, "closing the connection");
        let told = self.shared.try_enqueue(wire::go_away(&farewell)).is_ok();
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
        if told {
            // The writer sends the GOAWAY, shuts down and ends the session.
            close.notify_one();
            tokio::time::sleep(FAREWELL).await;
        }
        Ok(())
    }

    /// The peer ended its sending side cleanly (a half-close, or the end of
    /// a connection it closed): answers the calls and one-way messages it
    /// sent before that (up to the default timeout), then closes, so a peer
    /// that writes its requests and shuts down its sending side still gets
    /// every reply. Never returns: the writer ends the session.
    async fn answer_then_close(&self, close: &Notify) -> Result<(), ConnectionError> {
        let limit = self
            .shared
            .config()
            .default_timeout
            .unwrap_or(Duration::from_secs(30));
        let answered = async {
            while !self.shared.serving.is_idle() {
                tokio::select! {
                    biased;
                    () = self.shared.call_finished() => {}
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        };
        let _ = tokio::time::timeout(limit, answered).await;
        close.notify_one();
        std::future::pending().await
    }

    async fn read_loop<R: LinkReader>(&self, mut reader: R) -> Result<(), ConnectionError> {
        let mut frames = Vec::new();
        let mut messages = VecDeque::new();
        loop {
            if !reader.read(&mut frames, &self.shared.meter()).await? {
                return Ok(());
            }
            // Everything that arrived is handled before the next read;
            // one-way messages are handed over as one batch, and so are the
            // protocol messages between other envelopes (order kept).
            let count = frames.len() as u64;
            let mut traffic = false;
            let mut one_ways = Vec::new();
            for frame in frames.drain(..) {
                let frame = match wire::message_body(frame) {
                    Ok(body) => {
                        messages.push_back(body);
                        traffic = true;
                        continue;
                    }
                    Err(frame) => frame,
                };
                let envelope = match decode_envelope(frame) {
                    Ok(envelope) => envelope,
                    Err(source) => {
                        // What arrived whole before the bad frame is still
                        // the application's.
                        self.on_messages(&mut messages).await;
                        return Err(ConnectionError::Decode {
                            peer: self.shared.peer().to_owned(),
                            source,
                        });
                    }
                };
                traffic |= is_traffic(envelope.kind);
                match Kind::try_from(envelope.kind) {
                    Ok(Kind::OneWay) => one_ways.push((envelope.method, envelope.body)),
                    Ok(Kind::Message) => messages.push_back(envelope.body),
                    _ => {
                        self.on_messages(&mut messages).await;
                        // Boxed: its future (a request's handler start,
                        // a reply's routing) is the largest the read side
                        // awaits, and every idle connection's task would
                        // otherwise carry room for it. One allocation per
                        // such envelope costs less than what it does.
                        Box::pin(self.on_envelope(envelope)).await?;
                    }
                }
            }
            self.on_messages(&mut messages).await;
            if frames.capacity() > RETAINED_BATCH {
                frames.shrink_to(RETAINED_BATCH);
            }
            if messages.capacity() > RETAINED_BATCH {
                // A burst of tiny frames grew it: an idle connection keeps
                // no more than a modest batch's room.
                messages.shrink_to(RETAINED_BATCH);
            }
            Counters::add(&self.shared.counters.messages_in, count);
            if traffic {
                self.shared.activity.mark(Moment::Traffic);
            }
            if !one_ways.is_empty() {
                // Boxed (once per read), like `on_envelope`.
                Box::pin(self.on_one_ways(one_ways)).await;
                // Let the worker handle (and drop) those frames before the
                // next read, so a stream link's read buffer can be reclaimed
                // in place instead of regrown.
                tokio::task::yield_now().await;
            }
        }
    }

    async fn on_envelope(&self, envelope: Envelope) -> Result<(), ConnectionError> {
        match Kind::try_from(envelope.kind) {
            Ok(Kind::Request) => self.on_request(envelope).await,
            Ok(Kind::Response) => {
                let outcome = match envelope.status {
                    Some(status) if status.code != 0 => Err(Status::from_wire(status)),
                    _ => Ok(envelope.body),
                };
                if !self.shared.calls.complete(envelope.call_id, outcome) {
                    tracing::trace!(
                        peer = self.shared.peer(),
                        call_id = envelope.call_id,
                        "reply for a call no longer waiting"
                    );
                }
                self.shared.on_call_finished();
            }
            Ok(Kind::Pong) => self.on_pong(envelope.call_id),
            Ok(Kind::Cancel) => self.shared.serving.cancel(envelope.call_id),
            Ok(Kind::Ping) => {
                // The pong is tiny; failure means the session is closing.
                let _ = self
                    .shared
                    .enqueue(wire::control(Kind::Pong, envelope.call_id))
                    .await;
            }
            Ok(Kind::Goaway) => {
                let status = envelope.status.map_or_else(
                    || Status::unavailable(format!("{} is going away", self.shared.peer())),
                    Status::from_wire,
                );
                self.shared.on_peer_going_away(status);
            }
            Ok(Kind::Unspecified) => {
                return Err(ConnectionError::Protocol {
                    peer: self.shared.peer().to_owned(),
                    reason: "an envelope arrived without a kind".into(),
                });
            }
            // Handled by the read loop.
            Ok(Kind::OneWay | Kind::Message) => {}
            Err(_) => tracing::debug!(
                peer = self.shared.peer(),
                kind = envelope.kind,
                "ignoring an envelope of a kind this build does not know"
            ),
        }
        Ok(())
    }

    /// Hands protocol messages to the application's inbox, all of them
    /// under one lock when they fit. When the inbox is full, reading
    /// pauses until the application takes some: backpressure on the
    /// sender, never a dropped message.
    async fn on_messages(&self, messages: &mut VecDeque<Bytes>) {
        if messages.is_empty() {
            return;
        }
        self.shared.inbox.try_push_all(messages);
        if !messages.is_empty() {
            // Boxed: only a full inbox waits, and the wait would otherwise
            // take room in every idle connection's task.
            Box::pin(self.wait_for_inbox(messages)).await;
        }
    }

    /// The inbox is full: says so (once), and pauses reading until every
    /// one of `messages` is in.
    async fn wait_for_inbox(&self, messages: &mut VecDeque<Bytes>) {
        let inbox = &self.shared.inbox;
        if inbox.first_time_full() {
            // The usual cause is an application that never reads this
            // connection's messages: then calls behind them stall too, and
            // only a deadline says so. Say it once, where it starts.
            tracing::warn!(
                peer = self.shared.peer(),
                unread = inbox.len(),
                "received messages fill the inbox: nothing is calling recv() on this connection; \
                 reading from the peer pauses until something does"
            );
        }
        self.shared.activity.pause_reads(true);
        inbox.push_all(messages).await;
        self.shared.activity.pause_reads(false);
    }

    /// A PONG with call id 0 answers a heartbeat; any other, a `ping()` call.
    fn on_pong(&self, call_id: u64) {
        if call_id != 0 {
            self.shared.calls.complete(call_id, Ok(Bytes::new()));
            return self.shared.on_call_finished();
        }
        if let Some(queued) = self.shared.activity.take_ping() {
            self.shared.counters.record_rtt(queued.elapsed());
        }
    }

    async fn on_request(&self, envelope: Envelope) {
        let call_id = envelope.call_id;
        if let Err(refused) = handler::serve(&self.shared, &self.service, envelope).await {
            // Fails only when the session is closing.
            let _ = self
                .shared
                .enqueue(wire::response(call_id, Err(refused)))
                .await;
        }
    }

    /// Hands one-way messages to the connection's one-way worker.
    async fn on_one_ways(&self, messages: Vec<(u32, Bytes)>) {
        self.one_ways
            .deliver(&self.shared, &self.service, messages)
            .await;
    }

    async fn write_loop<W: LinkWriter>(
        &self,
        mut writer: W,
        close: &Notify,
    ) -> Result<(), ConnectionError> {
        let outbox = &self.shared.outbox;
        loop {
            let batch = tokio::select! {
                biased;
                () = close.notified() => None,
                batch = outbox.take() => Some(batch),
            };
            let Some(batch) = batch else {
                // Closing: what is still queued is written, and nothing
                // queued later is accepted (a send then fails at once
                // rather than being left unwritten), then the link shuts.
                if let Some(last) = outbox.close_and_take() {
                    self.write_batch(&mut writer, &last).await?;
                }
                return writer.shutdown().await;
            };
            // Everything queued goes out in one write: many small messages
            // cost one system call, and nothing waits for a timer.
            self.write_batch(&mut writer, &batch).await?;
            writer.flush().await?;
        }
    }

    /// Writes one batch. Fails when a single write makes no progress for
    /// the write-stall timeout: a slow reader is waited for, a reader that
    /// stopped is not.
    async fn write_batch<W: LinkWriter>(
        &self,
        writer: &mut W,
        batch: &Batch,
    ) -> Result<(), ConnectionError> {
        let mut rest = batch.bytes.clone();
        while !rest.is_empty() {
            let written = {
                let mut write = pin!(writer.write(&rest));
                // A write the socket takes at once needs no timer; the timer
                // for one that waits is boxed, so it takes no room in the
                // session's task while idle.
                let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
                match (first, self.shared.config().write_stall_timeout) {
                    (Poll::Ready(written), _) => written?,
                    (Poll::Pending, None) => write.await?,
                    (Poll::Pending, Some(limit)) => Box::pin(tokio::time::timeout(limit, write))
                        .await
                        .map_err(|_| ConnectionError::WriteStalled {
                            peer: self.shared.peer().to_owned(),
                            stalled: limit,
                        })??,
                }
            };
            rest = rest.slice(written.min(rest.len())..);
        }
        self.shared.activity.mark(Moment::Write);
        if batch.traffic {
            self.shared.activity.mark(Moment::Traffic);
        }
        Counters::add(&self.shared.counters.bytes_out, batch.bytes.len() as u64);
        Counters::add(&self.shared.counters.messages_out, batch.envelopes);
        Ok(())
    }
}
