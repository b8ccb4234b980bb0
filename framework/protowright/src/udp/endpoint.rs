//! The public endpoint: a bound UDP socket, its driver task, and the ways
//! to get connections out of it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::Error;
use super::connection::Connection;
use super::driver::drive;
use super::proto::{self, CLOSE_NORMAL, Config};
use super::shared::{ConnectionState, Shared};
use crate::net::{Datagram, Net};

/// A reliable-UDP endpoint: one socket serving any number of connections,
/// as a server (accepting), a client (connecting), or both.
///
/// Cheap to clone; the driver runs until [`shutdown`](Self::shutdown) or
/// until every clone and every connection is dropped.
#[derive(Debug, Clone)]
pub struct Endpoint {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    _owner: Arc<Owner>,
}

/// Shuts the endpoint down when the last handle goes.
#[derive(Debug)]
pub(super) struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        shut_down(&self.shared, "endpoint dropped");
    }
}

/// Stops accepting, closes every connection gracefully with `reason`, and
/// lets the driver stop once they are gone.
fn shut_down(shared: &Shared, reason: &str) {
    let mut state = shared.lock();
    state.shutting_down = true;
    state.engine.listen(false);
    let now = Instant::now().into_std();
    let handles: Vec<_> = state.connections.keys().copied().collect();
    for handle in handles {
        state.engine.close(handle, now, CLOSE_NORMAL, reason);
    }
    drop(state);
    shared.wake_driver.notify_one();
    shared.incoming.notify_waiters();
}

impl Endpoint {
    /// Binds a server endpoint on `addr` that accepts connections.
    /// Must be called inside a tokio runtime (the driver is a task).
    pub async fn server<N: Net>(net: &N, addr: SocketAddr, config: Config) -> Result<Self, Error> {
        Self::bind(net, addr, config, true).await
    }

    /// Binds a client endpoint on `addr` (`0.0.0.0:0` for any port) that
    /// only makes connections.
    pub async fn client<N: Net>(net: &N, addr: SocketAddr, config: Config) -> Result<Self, Error> {
        Self::bind(net, addr, config, false).await
    }

    async fn bind<N: Net>(
        net: &N,
        addr: SocketAddr,
        config: Config,
        accepting: bool,
    ) -> Result<Self, Error> {
        config.validate()?;
        let socket = net
            .bind_datagram(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = socket
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        // The seed comes from the address and the clock: distinct per
        // endpoint, and deterministic in a simulation, where both are.
        let now = Instant::now().into_std();
        let seed = seed_for(&config, local_addr);
        let mut engine = proto::Endpoint::new(config, now, seed)?;
        engine.listen(accepting);
        let shared = Arc::new(Shared::new(engine));
        tokio::spawn(drive(socket, shared.clone()));
        Ok(Self {
            _owner: Arc::new(Owner {
                shared: shared.clone(),
            }),
            shared,
            local_addr,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connects to `server` and waits for the handshake. Fails with the
    /// server's refusal, a handshake timeout, or a closed endpoint.
    pub async fn connect(&self, server: SocketAddr) -> Result<Connection, Error> {
        let (handle, notify) = {
            let mut state = self.shared.lock();
            if let Some(failure) = &state.stopped {
                return Err(Error::EndpointClosed(failure.clone()));
            }
            let now = Instant::now().into_std();
            let handle = state.engine.connect(now, server)?;
            let connection = ConnectionState::new();
            let notify = connection.notify.clone();
            state.connections.insert(handle, connection);
            (handle, notify)
        };
        self.shared.wake_driver.notify_one();
        let connection = Connection::new(
            self.shared.clone(),
            self._owner.clone(),
            handle,
            server,
            notify.clone(),
        );
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.shared.lock();
                if let Some(failure) = &state.stopped {
                    return Err(Error::EndpointClosed(failure.clone()));
                }
                let Some(entry) = state.connections.get(&handle) else {
                    return Err(Error::EndpointClosed(None));
                };
                if let Some(reason) = &entry.closed {
                    return Err(Error::Closed {
                        peer: server,
                        reason: reason.clone(),
                    });
                }
                if entry.connected {
                    return Ok(connection);
                }
            }
            notified.await;
        }
    }

    /// Waits for the next accepted connection. `None` once the endpoint is
    /// shut down (or is a client endpoint that was never listening and
    /// has stopped).
    pub async fn accept(&self) -> Option<Connection> {
        loop {
            let notified = self.shared.incoming.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if let Some(handle) = state.accept_queue.pop_front() {
                    let peer = state.engine.connection(handle).map(proto::Connection::peer);
                    let notify = state.connections.get(&handle).map(|c| c.notify.clone());
                    if let (Some(peer), Some(notify)) = (peer, notify) {
                        return Some(Connection::new(
                            self.shared.clone(),
                            self._owner.clone(),
                            handle,
                            peer,
                            notify,
                        ));
                    }
                    continue;
                }
                if state.stopped.is_some() || state.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Stops accepting, closes every connection gracefully (each first
    /// delivers what it has queued, within the idle timeout) and stops the
    /// driver once they are gone.
    pub fn shutdown(&self) {
        shut_down(&self.shared, "endpoint shutting down");
    }

    /// Waits until the endpoint holds no connection: every close has been
    /// sent and resent across its drain period (three probe timeouts), so
    /// a peer that lost the first close still hears it. Call it before a
    /// process exits after closing; otherwise a peer that lost the close
    /// learns of it only at its idle timeout.
    pub async fn wait_idle(&self) {
        while self.connection_count() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Endpoint-wide counters.
    pub fn stats(&self) -> proto::EndpointStats {
        self.shared.lock().engine.stats()
    }

    /// Connections held, including closing ones.
    pub fn connection_count(&self) -> usize {
        self.shared.lock().engine.connection_count()
    }
}

/// A seed for the endpoint's randomness: the configured one, or one drawn
/// from the wall clock and the address.
fn seed_for(config: &Config, addr: SocketAddr) -> u64 {
    if let Some(seed) = config.seed {
        return seed;
    }
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let mut material = addr.to_string().into_bytes();
    material.extend_from_slice(&wall.to_le_bytes());
    proto::seed_from(&material)
}
