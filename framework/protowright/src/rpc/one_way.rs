//! One-way messages (the wire's ONE_WAY calls): handled one at a time, in
//! arrival order, by a worker task per connection; when its queue is full
//! (`one_way_queue` messages or `one_way_bytes` bytes), reading pauses —
//! backpressure on the sender, never a dropped message.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::Service;
use super::budget::{Budget, Held};
use super::shared::Shared;

/// A connection's one-way worker: its queue and the room left in it,
/// counted in messages and in bytes, set up at the first one-way message.
#[derive(Debug, Default)]
pub(super) struct OneWays {
    worker: OnceLock<Worker>,
}

#[derive(Debug)]
struct Worker {
    queue: mpsc::UnboundedSender<OneWayBatch>,
    /// Room in the queue, in messages.
    room: Arc<Semaphore>,
    /// Room in the queue, in bytes.
    bytes: Budget,
}

impl OneWays {
    /// Queues one-way messages for the connection's one-way worker, which
    /// handles them one at a time in arrival order. When the queue is full,
    /// reading pauses: backpressure on the sender, never a dropped message.
    pub(super) async fn deliver<S: Service>(
        &self,
        shared: &Arc<Shared>,
        service: &Arc<S>,
        messages: Vec<(u32, Bytes)>,
    ) {
        if let Err(refused) = shared.admit_incoming() {
            tracing::debug!(peer = shared.peer(), status = %refused, count = messages.len(), "dropped one-way messages");
            return;
        }
        let capacity = shared.config().one_way_queue.max(1);
        let worker = self.worker.get_or_init(|| {
            let (queue, batches) = mpsc::unbounded_channel();
            tokio::spawn(one_way_worker(
                Arc::clone(shared),
                Arc::clone(service),
                batches,
            ));
            Worker {
                queue,
                room: Arc::new(Semaphore::new(capacity)),
                bytes: Budget::new(shared.config().one_way_bytes),
            }
        });
        let count = messages.len();
        let bytes = messages.iter().map(|(_, body)| body.len()).sum::<usize>();
        // A batch larger than the whole queue waits for all of it.
        let wanted = u32::try_from(count.min(capacity)).unwrap_or(u32::MAX);
        let room = Arc::clone(&worker.room).try_acquire_many_owned(wanted).ok();
        let held = worker.bytes.try_take(bytes, count);
        let (room, held) = match (room, held) {
            (Some(room), Some(held)) => (room, held),
            (room, held) => {
                shared.activity.pause_reads(true);
                let room = match room {
                    Some(room) => Some(room),
                    None => Arc::clone(&worker.room)
                        .acquire_many_owned(wanted)
                        .await
                        .ok(),
                };
                let held = match held {
                    Some(held) => Some(held),
                    None => worker.bytes.take(bytes, count).await,
                };
                shared.activity.pause_reads(false);
                let (Some(room), Some(held)) = (room, held) else {
                    return;
                };
                (room, held)
            }
        };
        shared.serving.one_ways_queued(count);
        if worker
            .queue
            .send(OneWayBatch {
                messages,
                _room: room,
                _held: held,
            })
            .is_err()
        {
            shared.serving.one_ways_done(count);
        }
    }
}

/// One-way messages from one read, holding their room in the queue.
struct OneWayBatch {
    messages: Vec<(u32, Bytes)>,
    _room: OwnedSemaphorePermit,
    _held: Held,
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
            shared.serving.one_ways_done(count);
            shared.on_call_finished();
        }
    };
    tokio::select! {
        biased;
        () = shared.ended() => {}
        () = work => {}
    }
}
