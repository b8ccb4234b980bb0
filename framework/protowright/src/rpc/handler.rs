//! Serving the peer's calls: each request runs its handler in the reader's
//! pass, and only a handler that has to wait gets a task of its own,
//! registered so a CANCEL can stop it.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;

use super::budget::Held;
use super::shared::Shared;
use super::wire;
use super::{Service, Status};
use crate::v1::Envelope;

/// Serves a request from the peer.
///
/// The handler runs here, in the reader's pass, and most answer without
/// waiting; only a handler that waits gets a task of its own (and is
/// registered so a cancel can stop it). Fails at once, without running
/// anything, when every handler slot is busy or the call id is already
/// being served. When the request budget has no room for the body, waits
/// (reading paused) until handlers give some back.
pub(super) async fn serve<S: Service>(
    shared: &Arc<Shared>,
    service: &Arc<S>,
    envelope: Envelope,
) -> Result<(), Status> {
    shared.admit_incoming()?;
    let slot = shared.serving.try_slot().ok_or_else(|| {
        Status::resource_exhausted(format!(
            "{} calls are already being served for {}",
            shared.config().max_concurrent_requests,
            shared.peer()
        ))
    })?;
    let call_id = envelope.call_id;
    if shared.serving.contains(call_id) {
        return Err(Status::invalid_argument(format!(
            "call id {call_id} is already in use by a call in progress"
        )));
    }
    let held = hold_body(shared, envelope.body.len()).await?;
    let timeout =
        (envelope.timeout_micros > 0).then(|| Duration::from_micros(envelope.timeout_micros));
    let handler = Handler {
        shared: Arc::clone(shared),
        service: Arc::clone(service),
        call_id,
        method: envelope.method,
        body: envelope.body,
        timeout,
    };
    let mut task = Box::pin(handler.run(slot, held));
    let finished = std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx).is_ready())).await;
    if !finished {
        shared
            .serving
            .register(call_id, || tokio::spawn(task).abort_handle());
    }
    Ok(())
}

/// Takes room for a request body of `len` bytes in the request budget;
/// when there is none, pauses reading until handlers give some back.
async fn hold_body(shared: &Shared, len: usize) -> Result<Held, Status> {
    if let Some(held) = shared.serving.try_hold(len) {
        return Ok(held);
    }
    shared.activity.pause_reads(true);
    let held = shared.serving.hold(len).await;
    shared.activity.pause_reads(false);
    held.ok_or_else(|| Status::unavailable("the session is closing"))
}

/// One incoming call: run in the reader's pass, or on a task of its own
/// once it waits.
struct Handler<S> {
    shared: Arc<Shared>,
    service: Arc<S>,
    call_id: u64,
    method: u32,
    body: Bytes,
    timeout: Option<Duration>,
}

impl<S: Service> Handler<S> {
    async fn outcome(&self) -> Result<Bytes, Status> {
        let call = self.service.call(self.method, self.body.clone());
        match self.timeout {
            None => call.await,
            Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "the handler did not finish within the caller's {limit:?}"
                )))
            }),
        }
    }

    /// Runs the handler and queues its answer, holding its slot and its
    /// room in the request budget until then.
    async fn run(self, _slot: OwnedSemaphorePermit, _held: Held) {
        let outcome = self.outcome().await;
        let answer = wire::response(self.call_id, outcome);
        if let Err(refused) = self.shared.enqueue(answer).await {
            // Too large to send: tell the caller why instead. (When the
            // session is closing, this fails too and nobody is waiting.)
            let _ = self
                .shared
                .enqueue(wire::response(self.call_id, Err(refused)))
                .await;
        }
        // Finished only once the answer is queued: a draining session must
        // not close before it is written.
        self.shared.serving.finish(self.call_id);
        self.shared.on_call_finished();
    }
}
