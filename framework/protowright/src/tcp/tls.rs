//! TLS for the TCP transport (cargo feature `tls`).
//!
//! [`Tls`] wraps any [`Net`] and encrypts its streams with rustls, so a
//! [`Server`](crate::Server) or [`Client`](crate::Client) on
//! [`Transport::Tcp`](crate::Transport::Tcp) gets TLS by being given
//! `Tls::server(...)` or `Tls::client(...)` instead of the plain network.
//! A server's handshake runs lazily on the connection's own task, so a slow
//! or hostile handshake never holds up the accept loop, and it must finish
//! within the handshake timeout ([`DEFAULT_HANDSHAKE_TIMEOUT`], or
//! [`Tls::with_handshake_timeout`]): a peer that connects and never speaks
//! TLS is dropped then, with an I/O error of kind `TimedOut` whose inner
//! error is a [`HandshakeTimeout`].

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{Accept, TlsAcceptor, TlsConnector, client, rustls, server};

use crate::net::{Listener, Net, Stream};
use crate::rpc::{ConfigError, check_duration};

/// How long a TLS handshake may take unless set otherwise: 10 s, ample for
/// a few round trips on any link, short enough that a peer which connects
/// and says nothing soon gives its socket back.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS handshake did not complete within its timeout: the peer is too
/// slow, or does not speak TLS. Carried inside the `TimedOut` I/O error
/// that ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the TLS handshake did not complete within {limit:?}: the peer is too slow or does not speak TLS"
)]
pub struct HandshakeTimeout {
    /// The handshake timeout in force.
    pub limit: Duration,
}

impl HandshakeTimeout {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, self)
    }
}

/// A network whose streams are encrypted with TLS.
///
/// Built for one role: [`server`](Self::server) accepts TLS connections,
/// [`client`](Self::client) opens them. Datagrams are not covered: binding
/// one fails with `Unsupported`. Either role's handshake must finish within
/// the handshake timeout ([`DEFAULT_HANDSHAKE_TIMEOUT`] unless set with
/// [`with_handshake_timeout`](Self::with_handshake_timeout)).
#[derive(Clone)]
pub struct Tls<N> {
    inner: N,
    role: Role,
    handshake_timeout: Duration,
}

#[derive(Clone)]
enum Role {
    Server(TlsAcceptor),
    Client(TlsConnector, ServerName<'static>),
}

impl<N> std::fmt::Debug for Tls<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = match &self.role {
            Role::Server(_) => "server".to_owned(),
            Role::Client(_, name) => format!("client of {name:?}"),
        };
        f.debug_struct("Tls")
            .field("role", &role)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl<N: Net> Tls<N> {
    /// Accepts TLS connections on `inner` with `config` (certificate chain
    /// and key).
    pub fn server(inner: N, config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            inner,
            role: Role::Server(TlsAcceptor::from(config)),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Opens TLS connections on `inner` with `config` (trusted roots),
    /// verifying that the server's certificate is for `server_name`.
    pub fn client(
        inner: N,
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Self {
        Self {
            inner,
            role: Role::Client(TlsConnector::from(config), server_name),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets how long a handshake may take, from the TCP connection's
    /// accept (or connect) to the end of the handshake. Refuses zero and
    /// anything above [`MAX_DURATION`](crate::rpc::MAX_DURATION).
    pub fn with_handshake_timeout(mut self, limit: Duration) -> Result<Self, ConfigError> {
        check_duration("handshake_timeout", limit)?;
        self.handshake_timeout = limit;
        Ok(self)
    }
}

fn wrong_role(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("this TLS network was built for the other role and cannot {what}"),
    )
}

impl<N: Net> Net for Tls<N> {
    type Stream = TlsStream<N::Stream>;
    type Listener = TlsListener<N::Listener>;
    type Datagram = N::Datagram;

    async fn listen(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        let Role::Server(acceptor) = &self.role else {
            return Err(wrong_role("listen"));
        };
        Ok(TlsListener {
            inner: self.inner.listen(addr).await?,
            acceptor: acceptor.clone(),
            handshake_timeout: self.handshake_timeout,
        })
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let Role::Client(connector, name) = &self.role else {
            return Err(wrong_role("connect"));
        };
        let stream = self.inner.connect(addr).await?;
        let addrs = Addrs::of(&stream)?;
        let limit = self.handshake_timeout;
        let tls = tokio::time::timeout(limit, connector.connect(name.clone(), stream))
            .await
            .map_err(|_| HandshakeTimeout { limit }.into_io())??;
        Ok(TlsStream {
            addrs,
            state: State::Client(Box::new(tls)),
        })
    }

    fn fill_random(&self, dest: &mut [u8]) -> io::Result<()> {
        self.inner.fill_random(dest)
    }

    async fn bind_datagram(&self, _addr: SocketAddr) -> io::Result<Self::Datagram> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "TLS covers streams only; datagrams are not encrypted",
        ))
    }
}

/// Accepts TCP connections whose TLS handshake completes on first use.
pub struct TlsListener<L> {
    inner: L,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl<L: Listener> Listener for TlsListener<L> {
    type Stream = TlsStream<L::Stream>;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = self.inner.accept().await?;
        let addrs = Addrs::of(&stream)?;
        let handshake = Handshake {
            accept: self.acceptor.accept(stream),
            limit: self.handshake_timeout,
            deadline: Box::pin(tokio::time::sleep(self.handshake_timeout)),
        };
        Ok((
            TlsStream {
                addrs,
                state: State::Accepting(Box::new(handshake)),
            },
            peer,
        ))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

#[derive(Debug, Clone, Copy)]
struct Addrs {
    peer: SocketAddr,
    local: SocketAddr,
}

impl Addrs {
    fn of<S: Stream>(stream: &S) -> io::Result<Self> {
        Ok(Self {
            peer: stream.peer_addr()?,
            local: stream.local_addr()?,
        })
    }
}

/// A TLS stream: a client's, or a server's whose handshake may still be
/// under way.
pub struct TlsStream<S> {
    addrs: Addrs,
    state: State<S>,
}

/// A server's handshake under way, and when it must be done.
struct Handshake<S> {
    accept: Accept<S>,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

enum State<S> {
    Accepting(Box<Handshake<S>>),
    Server(Box<server::TlsStream<S>>),
    Client(Box<client::TlsStream<S>>),
}

impl<S: Stream> TlsStream<S> {
    /// Drives a pending server handshake; ready once the stream is usable.
    /// Fails with a [`HandshakeTimeout`] once the handshake's deadline
    /// passed.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Accepting(handshake) = &mut self.state {
            if let Poll::Ready(stream) = Pin::new(&mut handshake.accept).poll(cx) {
                self.state = State::Server(Box::new(stream?));
                return Poll::Ready(Ok(()));
            }
            ready!(handshake.deadline.as_mut().poll(cx));
            let limit = handshake.limit;
            return Poll::Ready(Err(HandshakeTimeout { limit }.into_io()));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: Stream> Stream for TlsStream<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addrs.peer)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addrs.local)
    }

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match &self.state {
            State::Accepting(handshake) => handshake
                .accept
                .get_ref()
                .map_or(Ok(()), |s| s.set_nodelay(nodelay)),
            State::Server(stream) => stream.get_ref().0.set_nodelay(nodelay),
            State::Client(stream) => stream.get_ref().0.set_nodelay(nodelay),
        }
    }
}

impl<S: Stream> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        match &mut this.state {
            State::Server(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
            State::Client(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
            State::Accepting(_) => Poll::Pending,
        }
    }
}

impl<S: Stream> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        match &mut this.state {
            State::Server(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
            State::Client(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
            State::Accepting(_) => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        match &mut this.state {
            State::Server(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
            State::Client(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
            State::Accepting(_) => Poll::Pending,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        match &mut this.state {
            State::Server(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            State::Client(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            State::Accepting(_) => Poll::Pending,
        }
    }
}
