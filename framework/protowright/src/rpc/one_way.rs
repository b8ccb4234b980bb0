//! One-way messages (the wire's ONE_WAY calls): handled one at a time, in
//! arrival order, by a worker task per connection; when its bounded queue
//! is full, reading pauses — backpressure on the sender, never a dropped
//! message.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::Service;
use super::shared::Shared;

/// A connection's one-way worker: its queue and the room left in it
/// (counted in messages), set up at the first one-way message.
#[derive(Debug, Default)]
pub(super) struct OneWays {
    worker: OnceLock<(mpsc::UnboundedSender<OneWayBatch>, Arc<Semaphore>)>,
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
        let (queue, room) = self.worker.get_or_init(|| {
            let (queue, batches) = mpsc::unbounded_channel();
            tokio::spawn(one_way_worker(
                Arc::clone(shared),
                Arc::clone(service),
                batches,
            ));
            (queue, Arc::new(Semaphore::new(capacity)))
        });
        // A batch larger than the whole queue waits for all of it.
        let wanted = u32::try_from(messages.len().min(capacity)).unwrap_or(u32::MAX);
        let permit = match Arc::clone(room).try_acquire_many_owned(wanted) {
            Ok(permit) => permit,
            Err(_) => {
                shared.activity.pause_reads(true);
                let permit = Arc::clone(room).acquire_many_owned(wanted).await;
                shared.activity.pause_reads(false);
                let Ok(permit) = permit else { return };
                permit
            }
        };
        let count = messages.len();
        shared.serving.one_ways_queued(count);
        if queue
            .send(OneWayBatch {
                messages,
                _room: permit,
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
