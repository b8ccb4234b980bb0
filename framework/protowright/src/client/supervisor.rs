//! The task behind a [`Client`](super::Client): keeps its connection
//! alive, reopening it with backoff whenever it is lost.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::Schedule;
use super::dial::Dialer;
use super::{ConnectionState, Inner};
use crate::connection::Connection;
use crate::net::Net;
use crate::rpc::Service;

/// Serves the first connection, then reopens the connection whenever it is
/// lost, until the backoff policy gives up or the client is closed.
pub(super) async fn supervise<N: Net, S: Service>(
    dialer: Dialer<N>,
    inner: Arc<Inner>,
    service: Arc<S>,
    first: Connection,
    mut schedule: Schedule,
) {
    let mut connection = Some(first);
    loop {
        let last_error = match connection.take() {
            Some(live) => match serve(live, &inner).await {
                Some(lost) if !inner.config.reconnect => {
                    // A connection whose state cannot outlive it (a game
                    // seat): the client ends with it.
                    dialer.close().await;
                    inner
                        .state
                        .send_replace(ConnectionState::GaveUp { last_error: lost });
                    return;
                }
                Some(lost) => lost,
                None => break,
            },
            None => {
                inner.attempts.fetch_add(1, Ordering::Relaxed);
                inner.state.send_replace(ConnectionState::Connecting {
                    attempt: schedule.failures() + 1,
                });
                match dialer.dial(inner.server, &inner.config, &service).await {
                    Ok(reopened) => {
                        inner.reconnects.fetch_add(1, Ordering::Relaxed);
                        schedule.reset();
                        connection = Some(reopened);
                        continue;
                    }
                    Err(error) => error.reason,
                }
            }
        };
        let Some(delay) = schedule.next_delay(Instant::now()) else {
            tracing::warn!(server = %inner.server, %last_error, "giving up on connecting");
            dialer.close().await;
            inner
                .state
                .send_replace(ConnectionState::GaveUp { last_error });
            return;
        };
        tracing::debug!(server = %inner.server, %last_error, ?delay, "reconnecting after a delay");
        inner.state.send_replace(ConnectionState::Waiting {
            retry_in: delay,
            last_error,
        });
        tokio::select! {
            biased;
            () = inner.close.notified() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    dialer.close().await;
    inner.state.send_replace(ConnectionState::Closed);
}

/// Publishes `connection` and waits until it ends. Returns why it was
/// lost, or `None` when the client was closed.
async fn serve(connection: Connection, inner: &Inner) -> Option<String> {
    inner.connection.send_replace(Some(connection.clone()));
    inner.state.send_replace(ConnectionState::Connected);
    let outcome = tokio::select! {
        biased;
        () = inner.close.notified() => None,
        closed = connection.closed() => Some(closed),
    };
    inner.connection.send_replace(None);
    match outcome {
        None => {
            // Closing: what was queued goes first, then the close.
            connection.close();
            let _ = tokio::time::timeout(CLOSE_WAIT, connection.closed()).await;
            None
        }
        // Closed cleanly, maybe with the server's reason (a GOAWAY saying
        // why): the session's end status keeps it.
        Some(Ok(())) => Some(connection.session().end_status().message().to_owned()),
        Some(Err(error)) => Some(error.to_string()),
    }
}

/// How long a closing client waits for its connection to finish closing
/// (queued messages out, the close sent and, on reliable UDP, resent across
/// its drain) before it counts as closed anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
