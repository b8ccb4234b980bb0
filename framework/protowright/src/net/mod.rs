//! The socket layer: the few operations the transports need, behind traits.
//!
//! Transports are written against [`Net`], never against a concrete socket
//! type, so the very same code runs on real sockets ([`Tokio`]) and on a
//! simulated network (the turmoil provider in `protowright-sim`). Datagram
//! I/O is `async` rather than poll-based because simulated UDP sockets offer
//! no readiness API.
//!
//! Time is not part of this layer: transports read `tokio::time`, which a
//! simulation controls.

mod tokio;

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use ::tokio::io::{AsyncRead, AsyncWrite};

pub use self::tokio::Tokio;

/// A connected, ordered byte stream (TCP or its simulation).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The address of the remote end.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// The address of the local end.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Turns Nagle's algorithm off (`true`) or on. A provider without such a
    /// setting accepts the call and does nothing.
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()>;
}

/// A bound stream listener.
pub trait Listener: Send + Sync + 'static {
    /// The streams this listener yields.
    type Stream: Stream;

    /// Waits for the next inbound connection.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// The address the listener is bound to (with the port the system chose,
    /// when it was bound to port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A bound datagram socket. One socket may serve many peers.
pub trait Datagram: Send + Sync + 'static {
    /// Sends one datagram to `target`. Returns the number of bytes sent.
    fn send_to(
        &self,
        datagram: &[u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send;
    /// Waits for one datagram, copies it into `buf` (truncating it if `buf` is
    /// too small) and returns its length and source.
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
    /// Takes a datagram that has already arrived, without waiting: `None`
    /// when none has. Lets a transport drain a burst in one pass instead of
    /// one wake-up per datagram. The default always answers `None` (the
    /// caller then reads one datagram per wait), which suits providers
    /// without a non-blocking receive.
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        let _ = buf;
        Ok(None)
    }
    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A network: how to bind and connect. Cheap to clone.
pub trait Net: Clone + Send + Sync + 'static {
    /// Connected streams.
    type Stream: Stream;
    /// Stream listeners.
    type Listener: Listener<Stream = Self::Stream>;
    /// Datagram sockets.
    type Datagram: Datagram;

    /// Binds a stream listener to `addr`.
    fn listen(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// Opens a stream to `addr`.
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Binds a datagram socket to `addr`.
    fn bind_datagram(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Datagram>> + Send;
}
