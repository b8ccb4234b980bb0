//! The driver: one task per endpoint that moves datagrams between the
//! socket and the protocol engine, runs its timers on `tokio::time` (which
//! a simulation controls), and wakes the application's handles.
//!
//! Each turn takes the engine's due timers, a batch of datagrams to send
//! and its events under one lock, sends outside the lock, then waits for a
//! datagram, a wake-up from a handle, or the next timer. A received
//! datagram brings along, under the same lock, up to a batch of others that
//! have already arrived (where the socket can say so without waiting).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::proto::{Event, Side};
use super::shared::{ConnectionState, Shared, State};
use crate::net::Datagram;

/// Datagrams gathered per turn before the socket is read again.
const BATCH: usize = 64;

/// The largest datagram read.
const RECV_BUFFER: usize = 65_536;

pub(crate) async fn drive<D: Datagram>(socket: D, shared: Arc<Shared>) {
    let mut recv_buf = vec![0u8; RECV_BUFFER];
    let mut send_buf = Vec::with_capacity(BATCH * 1500);
    let mut batch: Vec<(SocketAddr, usize, usize)> = Vec::with_capacity(BATCH);
    loop {
        let (timeout, stop) = {
            let mut state = shared.lock();
            let now = Instant::now().into_std();
            state.engine.handle_timeout(now);
            send_buf.clear();
            batch.clear();
            while batch.len() < BATCH {
                let Some(transmit) = state.engine.poll_transmit(now, &mut send_buf) else {
                    break;
                };
                let end = send_buf.len();
                batch.push((transmit.destination, end - transmit.size, end));
            }
            dispatch_events(&mut state, &shared);
            let stop = state.shutting_down && state.engine.connection_count() == 0;
            (state.engine.poll_timeout(), stop)
        };
        for &(destination, start, end) in &batch {
            if let Err(error) = socket.send_to(&send_buf[start..end], destination).await {
                // Datagrams may be lost; the protocol recovers. Only say so.
                tracing::debug!(%destination, %error, "udp send failed");
            }
        }
        if stop {
            break;
        }
        if batch.len() == BATCH {
            // More may be waiting to go; take the next batch first.
            tokio::task::yield_now().await;
            continue;
        }
        let sleep = async {
            match timeout {
                Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            received = socket.recv_from(&mut recv_buf) => match received {
                Ok((len, from)) => {
                    let mut state = shared.lock();
                    let now = Instant::now().into_std();
                    state.engine.handle_datagram(now, from, &recv_buf[..len]);
                    // Take what else has arrived under the same lock.
                    for _ in 1..BATCH {
                        match socket.try_recv_from(&mut recv_buf) {
                            Ok(Some((len, from))) => state.engine.handle_datagram(now, from, &recv_buf[..len]),
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                Err(error) if is_transient(&error) => {
                    tracing::debug!(%error, "udp receive error ignored");
                }
                Err(error) => {
                    tracing::warn!(%error, "udp socket failed; stopping the endpoint");
                    stop_all(&shared, Some(error.to_string()));
                    return;
                }
            },
            () = shared.wake_driver.notified() => {}
            () = sleep => {}
        }
    }
    stop_all(&shared, None);
}

/// Errors a UDP socket reports for one datagram (an ICMP unreachable from
/// an earlier send, say) that say nothing about the socket itself.
fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused
            | ConnectionReset
            | HostUnreachable
            | NetworkUnreachable
            | Interrupted
            | WouldBlock
    ) || error
        .raw_os_error()
        .is_some_and(|code| code == 90 /* EMSGSIZE */)
}

/// Hands lifecycle events to the handles and wakes every touched one.
fn dispatch_events(state: &mut State, shared: &Shared) {
    while let Some((handle, event)) = state.engine.poll_event() {
        let side = state.engine.connection(handle).map(|c| c.side());
        match event {
            Event::Connected => {
                if side == Some(Side::Server) && !state.connections.contains_key(&handle) {
                    let mut connection = ConnectionState::new();
                    connection.connected = true;
                    state.connections.insert(handle, connection);
                    state.accept_queue.push_back(handle);
                    shared.incoming.notify_waiters();
                } else if let Some(connection) = state.connections.get_mut(&handle) {
                    connection.connected = true;
                }
            }
            Event::Closed(reason) => {
                if let Some(connection) = state.connections.get_mut(&handle) {
                    connection.closed = Some(reason);
                    connection.wake();
                } else {
                    // Nobody holds it: let the engine forget it.
                    state.engine.discard(handle);
                }
            }
        }
    }
    for handle in state.engine.drain_touched() {
        if let Some(connection) = state.connections.get_mut(&handle) {
            connection.wake();
        }
    }
}

fn stop_all(shared: &Shared, failure: Option<String>) {
    let mut state = shared.lock();
    state.stopped = Some(failure);
    for connection in state.connections.values_mut() {
        connection.wake();
    }
    drop(state);
    shared.incoming.notify_waiters();
}
