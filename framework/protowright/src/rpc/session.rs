//! An RPC session: calls in both directions over one ordered byte stream.
//!
//! One task drives the stream: its read half decodes envelopes and routes
//! them (requests to handler tasks, responses to waiting callers), its write
//! half gathers queued envelopes into batched writes. Everything it holds is
//! bounded by [`Config`]; when the stream ends, every waiting call fails with
//! `UNAVAILABLE` and every running handler is stopped.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::keepalive::{Moment, Timeouts, Verdict};
use super::outbox::Batch;
use super::shared::{Shared, is_call_traffic};
use super::stats::Counters;
use super::wire::decode_envelope;
use super::{Client, Config, Service, Stats, Status};
use crate::codec::Delimited;
use crate::error::ConnectionError;
use crate::v1::{Envelope, Kind};

/// A running RPC session; the handle that owns it.
///
/// The session runs until the peer closes the stream, an error ends it,
/// [`close`](Self::close) is called, or this handle and every [`Client`]
/// taken from it are dropped.
#[derive(Debug)]
pub struct Session {
    client: Client,
    done: oneshot::Receiver<Result<(), ConnectionError>>,
}

/// Closes the session when the last handle that keeps it alive is dropped.
#[derive(Debug)]
pub(super) struct Owner {
    pub(super) close: Arc<Notify>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.close.notify_one();
    }
}

impl Session {
    /// Starts a session over `io`, serving incoming calls with `service`.
    ///
    /// `peer` names the other end in errors and logs (an address, say).
    /// Must be called inside a tokio runtime: the session runs on a task of
    /// its own, and each incoming call on another.
    pub fn spawn<IO, S>(io: IO, peer: impl Into<String>, service: S, config: Config) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
        S: Service,
    {
        let shared = Arc::new(Shared::new(peer.into(), config));
        let close = Arc::new(Notify::new());
        let owner = Arc::new(Owner {
            close: Arc::clone(&close),
        });
        let (done_tx, done) = oneshot::channel();
        let driver = Driver {
            shared: Arc::clone(&shared),
            service: Arc::new(service),
            one_ways: OnceLock::new(),
        };
        tokio::spawn(async move {
            let result = driver.run(io, close).await;
            // The handle may be gone; then nobody is waiting for the outcome.
            let _ = done_tx.send(result);
        });
        Self {
            client: Client::new(shared, owner),
            done,
        }
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
    /// the write side is shut down. Calls still waiting fail with `UNAVAILABLE`.
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
    /// `Ok(())` means it ended cleanly: the peer closed the stream on a frame
    /// boundary, or this side closed it.
    pub async fn closed(self) -> Result<(), ConnectionError> {
        let peer = self.client.peer().to_owned();
        let outcome = self.done.await;
        drop(self.client);
        outcome.unwrap_or(Err(ConnectionError::Aborted { peer }))
    }
}

/// The session's task: reads and writes the stream until it ends.
struct Driver<S> {
    shared: Arc<Shared>,
    service: Arc<S>,
    /// The queue to the one-way worker and the room left in it (counted in
    /// messages), set up at the first one-way message.
    one_ways: OnceLock<(mpsc::UnboundedSender<OneWayBatch>, Arc<Semaphore>)>,
}

/// One-way messages from one read, holding their room in the queue.
struct OneWayBatch {
    messages: Vec<(u32, Bytes)>,
    _room: OwnedSemaphorePermit,
}

/// Handles a connection's one-way messages, one at a time, in order, until
/// the session ends.
async fn one_way_worker<S: Service>(
    shared: Arc<Shared>,
    service: Arc<S>,
    mut batches: mpsc::UnboundedReceiver<OneWayBatch>,
) {
    let work = async {
        while let Some(batch) = batches.recv().await {
            let count = batch.messages.len();
            for (method, body) in batch.messages {
                if let Err(status) = service.call(method, body).await {
                    tracing::debug!(peer = shared.peer(), %status, "a one-way message's handler failed");
                }
            }
            shared.one_ways_done(count);
        }
    };
    tokio::select! {
        biased;
        () = shared.ended() => {}
        () = work => {}
    }
}

impl<S: Service> Driver<S> {
    async fn run<IO>(self, io: IO, close: Arc<Notify>) -> Result<(), ConnectionError>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(io);
        let result = tokio::select! {
            biased;
            written = self.write_loop(writer, &close) => written,
            read = self.read_loop(reader) => read,
            kept = self.keepalive(&close) => kept,
        };
        if result.is_ok() {
            self.finish_one_ways().await;
        }
        let reason = match &result {
            Ok(()) => format!("the connection with {} was closed", self.shared.peer()),
            Err(error) => error.to_string(),
        };
        self.shared.shut_down(reason);
        result
    }

    /// After a clean end, lets the one-way worker handle what was already
    /// delivered (up to the default timeout): those messages arrived whole,
    /// so they are not dropped.
    async fn finish_one_ways(&self) {
        self.shared.start_draining();
        let limit = self
            .shared
            .config()
            .default_timeout
            .unwrap_or(Duration::from_secs(30));
        let handled = async {
            while self.shared.has_one_ways_pending() {
                self.shared.call_finished().await;
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
                    let _ = self.shared.try_enqueue(Envelope {
                        kind: Kind::Ping as i32,
                        ..Envelope::default()
                    });
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

    async fn read_loop<R>(&self, mut reader: R) -> Result<(), ConnectionError>
    where
        R: AsyncRead + Unpin,
    {
        let config = self.shared.config();
        let mut codec = Delimited::new(config.max_frame);
        let mut buf = BytesMut::with_capacity(config.read_buffer);
        loop {
            // Everything complete in the buffer is handled before the next
            // read; one-way messages are handed over as one batch.
            let mut decoded = 0;
            let mut traffic = false;
            let mut one_ways = Vec::new();
            while let Some(frame) = codec
                .decode(&mut buf)
                .map_err(|source| self.shared.frame_error(source))?
            {
                let envelope =
                    decode_envelope(frame).map_err(|source| ConnectionError::Decode {
                        peer: self.shared.peer().to_owned(),
                        source,
                    })?;
                decoded += 1;
                traffic |= is_call_traffic(envelope.kind);
                if envelope.kind == Kind::OneWay as i32 {
                    one_ways.push((envelope.method, envelope.body));
                } else {
                    self.on_envelope(envelope).await?;
                }
            }
            if !one_ways.is_empty() {
                self.on_one_ways(one_ways).await;
                // Let the worker handle (and drop) those frames before the
                // next read: the read buffer can then be reclaimed in place
                // instead of regrown into fresh memory with the partial
                // frame copied (a profile of bulk transfers showed both).
                tokio::task::yield_now().await;
            }
            Counters::add(&self.shared.counters.messages_in, decoded);
            if traffic {
                self.shared.activity.mark(Moment::Traffic);
            }
            if buf.capacity() - buf.len() < config.read_buffer / 4 {
                buf.reserve(config.read_buffer);
            }
            let read = reader
                .read_buf(&mut buf)
                .await
                .map_err(|source| self.shared.io_error(source))?;
            self.shared.activity.mark(Moment::Read);
            Counters::add(&self.shared.counters.bytes_in, read as u64);
            if read == 0 {
                return codec
                    .decode_eof(&buf)
                    .map_err(|source| self.shared.frame_error(source));
            }
        }
    }

    async fn on_envelope(&self, envelope: Envelope) -> Result<(), ConnectionError> {
        match Kind::try_from(envelope.kind) {
            Ok(Kind::Request) => self.on_request(envelope).await,
            Ok(Kind::OneWay) => {
                self.on_one_ways(vec![(envelope.method, envelope.body)])
                    .await
            }
            Ok(Kind::Response) => {
                let outcome = match envelope.status {
                    Some(status) if status.code != 0 => Err(Status::from_wire(status)),
                    _ => Ok(envelope.body),
                };
                self.shared.complete(envelope.call_id, outcome);
            }
            Ok(Kind::Pong) => self.on_pong(envelope.call_id),
            Ok(Kind::Cancel) => self.shared.cancel_serving(envelope.call_id),
            Ok(Kind::Ping) => {
                let pong = Envelope {
                    kind: Kind::Pong as i32,
                    call_id: envelope.call_id,
                    ..Envelope::default()
                };
                // The pong is tiny; failure means the session is closing.
                let _ = self.shared.enqueue(pong).await;
            }
            Ok(Kind::Goaway) => {
                let reason = envelope.status.map(Status::from_wire).map_or_else(
                    || format!("{} is going away", self.shared.peer()),
                    |status| format!("{} is going away: {}", self.shared.peer(), status.message()),
                );
                self.shared.on_peer_going_away(reason);
            }
            Ok(Kind::Unspecified) => {
                return Err(ConnectionError::Protocol {
                    peer: self.shared.peer().to_owned(),
                    reason: "an envelope arrived without a kind".into(),
                });
            }
            Ok(Kind::Message) | Err(_) => tracing::debug!(
                peer = self.shared.peer(),
                kind = envelope.kind,
                "ignoring an envelope of a kind this build does not know"
            ),
        }
        Ok(())
    }

    /// A PONG with call id 0 answers a heartbeat; any other, a `ping()` call.
    fn on_pong(&self, call_id: u64) {
        if call_id != 0 {
            return self.shared.complete(call_id, Ok(Bytes::new()));
        }
        if let Some(queued) = self.shared.activity.take_ping() {
            self.shared.counters.record_rtt(queued.elapsed());
        }
    }

    async fn on_request(&self, envelope: Envelope) {
        let call_id = envelope.call_id;
        if let Err(refused) = self.shared.serve_request(&self.service, envelope).await {
            // Fails only when the session is closing.
            let _ = self.shared.enqueue(response(call_id, Err(refused))).await;
        }
    }

    /// Queues one-way messages for the connection's one-way worker, which
    /// handles them one at a time in arrival order. When the queue is full,
    /// reading pauses: backpressure on the sender, never a dropped message.
    async fn on_one_ways(&self, messages: Vec<(u32, Bytes)>) {
        if let Err(refused) = self.shared.refuses_calls() {
            tracing::debug!(peer = self.shared.peer(), status = %refused, count = messages.len(), "dropped one-way messages");
            return;
        }
        let capacity = self.shared.config().one_way_queue;
        let (queue, room) = self.one_ways.get_or_init(|| {
            let (queue, batches) = mpsc::unbounded_channel();
            tokio::spawn(one_way_worker(
                Arc::clone(&self.shared),
                Arc::clone(&self.service),
                batches,
            ));
            (queue, Arc::new(Semaphore::new(capacity)))
        });
        // A batch larger than the whole queue waits for all of it.
        let wanted = u32::try_from(messages.len().min(capacity)).unwrap_or(u32::MAX);
        let permit = match Arc::clone(room).try_acquire_many_owned(wanted) {
            Ok(permit) => permit,
            Err(_) => {
                self.shared.activity.pause_reads(true);
                let permit = Arc::clone(room).acquire_many_owned(wanted).await;
                self.shared.activity.pause_reads(false);
                let Ok(permit) = permit else { return };
                permit
            }
        };
        let count = messages.len();
        self.shared.one_ways_queued(count);
        if queue
            .send(OneWayBatch {
                messages,
                _room: permit,
            })
            .is_err()
        {
            self.shared.one_ways_done(count);
        }
    }

    async fn write_loop<W>(&self, mut writer: W, close: &Notify) -> Result<(), ConnectionError>
    where
        W: AsyncWrite + Unpin,
    {
        let outbox = &self.shared.outbox;
        loop {
            let batch = tokio::select! {
                biased;
                () = close.notified() => None,
                batch = outbox.take() => Some(batch),
            };
            let Some(batch) = batch else {
                // Closing: write what is still queued, then shut down.
                if let Some(last) = outbox.take_now() {
                    self.write_batch(&mut writer, &last).await?;
                }
                return writer
                    .shutdown()
                    .await
                    .map_err(|source| self.shared.io_error(source));
            };
            // Everything queued goes out in one write: many small messages
            // cost one system call, and nothing waits for a timer.
            self.write_batch(&mut writer, &batch).await?;
            writer
                .flush()
                .await
                .map_err(|source| self.shared.io_error(source))?;
        }
    }

    /// Writes one batch. Fails when a single write makes no progress for
    /// the write-stall timeout: a slow reader is waited for, a reader that
    /// stopped is not.
    async fn write_batch<W>(&self, writer: &mut W, batch: &Batch) -> Result<(), ConnectionError>
    where
        W: AsyncWrite + Unpin,
    {
        let Batch {
            bytes: batch,
            envelopes,
            traffic,
        } = batch;
        let mut written = 0;
        while written < batch.len() {
            let write = writer.write(&batch[written..]);
            let result = match self.shared.config().write_stall_timeout {
                None => write.await,
                Some(limit) => tokio::time::timeout(limit, write).await.map_err(|_| {
                    ConnectionError::WriteStalled {
                        peer: self.shared.peer().to_owned(),
                        stalled: limit,
                    }
                })?,
            };
            match result.map_err(|source| self.shared.io_error(source))? {
                0 => {
                    let closed = std::io::Error::from(std::io::ErrorKind::WriteZero);
                    return Err(self.shared.io_error(closed));
                }
                n => written += n,
            }
        }
        self.shared.activity.mark(Moment::Write);
        if *traffic {
            self.shared.activity.mark(Moment::Traffic);
        }
        Counters::add(&self.shared.counters.bytes_out, batch.len() as u64);
        Counters::add(&self.shared.counters.messages_out, *envelopes);
        Ok(())
    }
}

/// The response envelope for `call_id`.
pub(super) fn response(call_id: u64, outcome: Result<Bytes, Status>) -> Envelope {
    match outcome {
        Ok(body) => Envelope {
            kind: Kind::Response as i32,
            call_id,
            body,
            ..Envelope::default()
        },
        Err(status) => Envelope {
            kind: Kind::Response as i32,
            call_id,
            status: Some(status.to_wire()),
            ..Envelope::default()
        },
    }
}
