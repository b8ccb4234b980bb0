//! The public endpoint: a bound UDP socket, its driver task, and the ways
//! to get connections out of it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::time::Instant;

use super::Error;
use super::connection::Connection;
use super::driver::drive;
use super::proto::{self, Config};
use super::shared::{Owner, Shared};
use crate::net::{Datagram, Net};

/// A reliable-UDP endpoint: one socket serving any number of connections,
/// as a server (accepting), a client (connecting), or both.
///
/// Cheap to clone; the driver runs until [`shutdown`](Self::shutdown) or
/// until every clone and every connection is dropped. Its randomness
/// (connection ids, the cookie key) is a fast generator seeded with 64 bits
/// from the network provider: the system's generator on real sockets, the
/// seeded one in a simulation. It is not cryptographic.
#[derive(Debug, Clone)]
pub struct Endpoint {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    owner: Arc<Owner>,
}

impl Endpoint {
    /// Binds a server endpoint on `addr` that accepts connections.
    /// Must be called inside a tokio runtime (the driver is a task).
    pub async fn server<N: Net>(net: N, addr: SocketAddr, config: Config) -> Result<Self, Error> {
        if config.security.static_key.is_none() && !config.security.insecure_plaintext_for_debugging
        {
            tracing::info!(
                %addr,
                "no static key configured: this server has a fresh identity for this run, so clients cannot pin it across restarts and its resets are not recognised after one (load one with udp::StaticKey::load_or_generate)"
            );
        }
        let socket = bind(&net, addr).await?;
        Self::start(&net, socket, config, true, None)
    }

    /// Binds a client endpoint on `addr` (`0.0.0.0:0` for any port) that
    /// only makes connections.
    pub async fn client<N: Net>(net: N, addr: SocketAddr, config: Config) -> Result<Self, Error> {
        let socket = bind(&net, addr).await?;
        Self::start(&net, socket, config, false, None)
    }

    /// A client endpoint on a fresh port whose socket talks only to
    /// `server`, so the system reports a refusal (nothing listens there)
    /// and connections to it fail at once instead of timing out.
    pub(crate) async fn dialer<N: Net>(
        net: N,
        server: SocketAddr,
        config: Config,
    ) -> Result<Self, Error> {
        let any = match server.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let addr = SocketAddr::new(any, 0);
        let socket = bind(&net, addr).await?;
        socket
            .connect(server)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Self::start(&net, socket, config, false, Some(server))
    }

    fn start<N: Net>(
        net: &N,
        socket: N::Datagram,
        config: Config,
        accepting: bool,
        connected_peer: Option<SocketAddr>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let local_addr = socket.local_addr().map_err(|source| Error::Bind {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            source,
        })?;
        let mut entropy = [0u8; 32];
        net.fill_random(&mut entropy)
            .map_err(|source| Error::Bind {
                addr: local_addr,
                source,
            })?;
        let now = Instant::now().into_std();
        let mut engine = proto::Endpoint::with_entropy(config, now, entropy)?;
        engine.set_unix_time(now, net.unix_time());
        engine.listen(accepting);
        let shared = Arc::new(Shared::new(engine));
        shared.lock().connected_peer = connected_peer;
        tokio::spawn(drive(socket, shared.clone()));
        Ok(Self {
            owner: Arc::new(Owner {
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
            if let Some(error) = state.stopped() {
                return Err(error);
            }
            let now = Instant::now().into_std();
            let handle = state.engine.connect(now, server)?;
            (handle, state.track_connecting(handle))
        };
        self.shared.wake_driver.notify_one();
        let connection = Connection::new(
            self.shared.clone(),
            self.owner.clone(),
            handle,
            server,
            notify,
        );
        connection
            .wait_for(|state, handle| {
                if let Some(error) = state.stopped() {
                    return std::task::Poll::Ready(Err(error));
                }
                match state.is_connected(handle) {
                    Ok(true) => std::task::Poll::Ready(Ok(())),
                    Ok(false) => std::task::Poll::Pending,
                    Err(reason) => std::task::Poll::Ready(Err(Error::Closed {
                        peer: server,
                        reason,
                    })),
                }
            })
            .await?;
        Ok(connection)
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
                if let Some((handle, peer, notify)) = state.take_accepted() {
                    return Some(Connection::new(
                        self.shared.clone(),
                        self.owner.clone(),
                        handle,
                        peer,
                        notify,
                    ));
                }
                if !state.is_accepting() {
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
        self.shared.shut_down("endpoint shutting down");
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

    /// This endpoint's static public key: what its clients pin in
    /// [`Security::server_key`](proto::crypto::Security::server_key).
    pub fn public_key(&self) -> proto::crypto::PublicKey {
        self.shared.lock().engine.public_key()
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

/// Binds a datagram socket on `addr`.
async fn bind<N: Net>(net: &N, addr: SocketAddr) -> Result<N::Datagram, Error> {
    net.bind_datagram(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}
