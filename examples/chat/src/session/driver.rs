//! The session's driver: one task per session that forwards the server's
//! events to the application and, when the connection is lost, waits for
//! protowright's client to reconnect and joins the room again on the new
//! connection (with the session's secret, so the nickname comes back even
//! if the server still holds the old connection).

use std::sync::Arc;
use std::time::Duration;

use protowright::rpc::{Code, Status};
use protowright::{Connection, Protocol as _, RecvError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Shared, Update, join_on};
use crate::pb;

/// The session's driver: forwards the server's events, and after a lost
/// connection waits for the next one and joins the room again on it.
pub(super) async fn drive(
    shared: Arc<Shared>,
    mut connection: Connection,
    updates: mpsc::Sender<Update>,
) {
    loop {
        let Some(reason) = forward(&connection, &updates).await else {
            // The application dropped its updates: nobody is listening.
            shared.client.close();
            return;
        };
        shared.ready.send_replace(None);
        if shared.is_over() {
            return;
        }
        if updates.send(Update::Disconnected { reason }).await.is_err() {
            shared.client.close();
            return;
        }
        let Some((next, update)) = rejoin(&shared).await else {
            return;
        };
        connection = next;
        if updates.send(update).await.is_err() {
            shared.client.close();
            return;
        }
    }
}

/// Forwards the events of `connection` until it ends; returns why it
/// ended, or `None` when the application stopped listening.
async fn forward(connection: &Connection, updates: &mpsc::Sender<Update>) -> Option<String> {
    loop {
        let received = tokio::select! {
            biased;
            () = updates.closed() => return None,
            received = connection.recv::<pb::Event>() => received,
        };
        let event = match received {
            Ok(Some(event)) => event,
            Ok(None) => return Some("the server closed the connection".into()),
            Err(error @ RecvError::Decode { .. }) => {
                tracing::debug!(%error, "skipped an event this version cannot read");
                continue;
            }
            Err(error) => return Some(error.to_string()),
        };
        use pb::event::Event;
        let update = match event.into_kind() {
            Some(Event::Said(said)) => Update::Said(said),
            Some(Event::Joined(joined)) => Update::Joined(joined),
            Some(Event::Left(left)) => Update::Left(left),
            Some(Event::Missed(missed)) => Update::Missed(missed.count),
            None => continue,
        };
        if updates.send(update).await.is_err() {
            return None;
        }
    }
}

/// Waits for the next connection and joins the room again on it; `None`
/// once the client is closed or has given up.
async fn rejoin(shared: &Shared) -> Option<(Connection, Update)> {
    loop {
        if shared.is_over() {
            return None;
        }
        let Ok(connection) = shared.client.connection().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if connection.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let _membership = shared.membership.lock().await;
        let Some(room) = shared.room().clone() else {
            shared.ready.send_replace(Some(connection.clone()));
            return Some((connection, Update::Reconnected));
        };
        let deadline = Instant::now() + shared.call_timeout;
        match join_on(&connection, &shared.nick, &room, shared.resume, deadline).await {
            Ok(reply) => {
                shared.ready.send_replace(Some(connection.clone()));
                return Some((connection, Update::Rejoined(reply)));
            }
            Err(status) if is_transient(&status) => {
                tracing::debug!(%status, "joining again failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => {
                *shared.room() = None;
                shared.ready.send_replace(Some(connection.clone()));
                return Some((connection, Update::RejoinFailed(status)));
            }
        }
    }
}

/// Whether a failed call may work if tried again (on this connection or
/// the next).
pub(super) fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
    )
}
