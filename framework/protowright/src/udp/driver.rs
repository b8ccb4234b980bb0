//! The driver: one task per endpoint that moves datagrams between the
//! socket and the protocol engine, runs its timers on `tokio::time` (which
//! a simulation controls), and wakes the application's handles.
//!
//! Each turn takes the engine's due timers, a batch of datagrams to send
//! and its events under one lock, sends outside the lock, then waits for a
//! datagram, a wake-up from a handle, or the next timer. A received
//! datagram brings along, under the same lock, up to a batch of others that
//! have already arrived (where the socket can say so without waiting).
//!
//! Runs of equal-size datagrams to one peer go to the socket in one call
//! where it offers segmentation offload (GSO); datagrams the kernel
//! coalesced on receipt (GRO) are cut apart again here.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::shared::Shared;
use crate::net::Datagram;

/// Datagrams gathered per turn before the socket is read again.
const BATCH: usize = 64;

/// Bytes gathered per turn: with large datagrams the count limit alone
/// would hold megabytes.
const BATCH_BYTES: usize = 256 << 10;

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
            while batch.len() < BATCH && send_buf.len() < BATCH_BYTES {
                let Some(transmit) = state.engine.poll_transmit(now, &mut send_buf) else {
                    break;
                };
                let end = send_buf.len();
                batch.push((transmit.destination, end - transmit.size, end));
            }
            if state.dispatch_events() {
                shared.incoming.notify_waiters();
            }
            let stop = state.is_finished();
            (state.engine.poll_timeout(), stop)
        };
        let max_segments = socket.max_segments();
        let mut rest = &batch[..];
        while !rest.is_empty() {
            let run = segment_run(rest, max_segments);
            let (destination, start, first_end) = rest[0];
            let end = rest[run - 1].2;
            let sent = if run == 1 {
                socket
                    .send_to(&send_buf[start..end], destination)
                    .await
                    .map(drop)
            } else {
                socket
                    .send_segments(&send_buf[start..end], first_end - start, destination)
                    .await
            };
            if let Err(error) = sent {
                if error.kind() == std::io::ErrorKind::ConnectionRefused {
                    shared.lock().on_refused();
                }
                // Datagrams may be lost; the protocol recovers. Only say so.
                tracing::debug!(%destination, %error, "udp send failed");
            }
            rest = &rest[run..];
        }
        if stop {
            break;
        }
        if batch.len() == BATCH || send_buf.len() >= BATCH_BYTES {
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
            received = socket.recv_segments(&mut recv_buf) => match received {
                Ok(segments) => {
                    let mut state = shared.lock();
                    let now = Instant::now().into_std();
                    for range in segments.ranges() {
                        state.engine.handle_datagram(now, segments.source, &recv_buf[range]);
                    }
                    // Take what else has arrived under the same lock.
                    for _ in 1..BATCH {
                        match socket.try_recv_segments(&mut recv_buf) {
                            Ok(Some(segments)) => {
                                for range in segments.ranges() {
                                    state.engine.handle_datagram(now, segments.source, &recv_buf[range]);
                                }
                            }
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                    // Only a socket restricted to one peer reports this, and
                    // then it is that peer's refusal.
                    tracing::debug!(%error, "the peer refused our datagrams");
                    shared.lock().on_refused();
                }
                Err(error) if is_transient(&error) => {
                    tracing::debug!(%error, "udp receive error ignored");
                }
                Err(error) => {
                    tracing::warn!(%error, "udp socket failed; stopping the endpoint");
                    shared.stop(Some(error.to_string()));
                    return;
                }
            },
            () = shared.wake_driver.notified() => {}
            () = sleep => {}
        }
    }
    shared.stop(None);
}

/// The most bytes one segmented send carries: a UDP datagram's limit.
const MAX_SEGMENTED_BYTES: usize = 65_000;

/// How many datagrams from the front of `batch` (destination, start, end
/// in the send buffer) go in one segmented send: same destination, each as
/// large as the first but the last, which may be shorter.
fn segment_run(batch: &[(SocketAddr, usize, usize)], max_segments: usize) -> usize {
    let (destination, start, end) = batch[0];
    let size = end - start;
    let mut run = 1;
    let mut total = size;
    while run < batch.len().min(max_segments) {
        let (next_destination, next_start, next_end) = batch[run];
        let next_size = next_end - next_start;
        if next_destination != destination
            || next_size > size
            || next_start != start + total
            || total + next_size > MAX_SEGMENTED_BYTES
        {
            break;
        }
        run += 1;
        total += next_size;
        if next_size < size {
            break;
        }
    }
    run
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_run_is_equal_sizes_to_one_peer_with_a_shorter_last() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let batch = [
            (a, 0, 1000),
            (a, 1000, 2000),
            (a, 2000, 2500),
            (a, 2500, 3500),
            (b, 3500, 4500),
        ];
        assert_eq!(segment_run(&batch, 64), 3, "ends after the shorter one");
        assert_eq!(segment_run(&batch[3..], 64), 1, "another peer");
        assert_eq!(segment_run(&batch, 2), 2, "the socket's limit");
        assert_eq!(segment_run(&batch, 1), 1, "no offload");
        let larger = [(a, 0, 1000), (a, 1000, 3000)];
        assert_eq!(segment_run(&larger, 64), 1, "a larger one starts a new run");
        let big = [(a, 0, 40_000), (a, 40_000, 80_000)];
        assert_eq!(segment_run(&big, 64), 1, "a datagram's byte limit");
    }
}
