//! The socket layer: the few operations the transports need, behind traits.
//!
//! Transports are written against [`Net`], never against a concrete socket
//! type, so the very same code runs on real sockets ([`Tokio`]) and on a
//! simulated network (the turmoil provider in `protowright-sim`). Datagram
//! I/O is `async` rather than poll-based because simulated UDP sockets offer
//! no readiness API.
//!
//! Time is not part of this layer: transports read `tokio::time`, which a
//! simulation controls. Randomness is: every random choice protowright
//! makes (connection ids, cookie keys, reconnect jitter) starts from
//! [`Net::fill_random`], which the real-socket provider answers from the
//! operating system's generator and a simulation from its seeded one — so a
//! simulation replays exactly, without the application doing anything.
//! (An endpoint or client draws 64 bits from it once and expands them with
//! a fast, non-cryptographic generator: ids are unpredictable to an
//! off-path guess, not to a determined attacker. Packet protection is where
//! secrets will come straight from the system.)

mod tokio;

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use ::tokio::io::{AsyncRead, AsyncWrite};

pub use self::tokio::{Tokio, TokioDatagram};

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
    /// The most equal-size datagrams [`send_segments`](Self::send_segments)
    /// passes to the system in one call (segmentation offload). The default
    /// is 1: no offload.
    fn max_segments(&self) -> usize {
        1
    }
    /// Sends `contents` to `target` as datagrams of `segment_size` bytes
    /// each (the last may be shorter), in one system call where the
    /// platform offers segmentation offload. The default sends them one by
    /// one.
    fn send_segments(
        &self,
        contents: &[u8],
        segment_size: usize,
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<()>> + Send {
        async move {
            for datagram in contents.chunks(segment_size.max(1)) {
                self.send_to(datagram, target).await?;
            }
            Ok(())
        }
    }
    /// Waits for datagrams and copies them into `buf`: one datagram, or,
    /// where the platform coalesces received datagrams (receive offload),
    /// several from one source laid end to end, each `stride` bytes long
    /// but the last. The default receives one with
    /// [`recv_from`](Self::recv_from).
    fn recv_segments(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<Segments>> + Send {
        async move {
            let (len, source) = self.recv_from(buf).await?;
            Ok(Segments::single(len, source))
        }
    }
    /// [`recv_segments`](Self::recv_segments) without waiting: `None` when
    /// nothing has arrived. The default uses
    /// [`try_recv_from`](Self::try_recv_from).
    fn try_recv_segments(&self, buf: &mut [u8]) -> io::Result<Option<Segments>> {
        Ok(self
            .try_recv_from(buf)?
            .map(|(len, source)| Segments::single(len, source)))
    }
    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Restricts the socket to one peer, so the system reports that peer's
    /// refusals (an ICMP "port unreachable": nothing listens there) as a
    /// `ConnectionRefused` error from a receive. A client endpoint that
    /// talks to one server uses it to fail fast at a wrong port. The
    /// default does nothing, for providers that cannot tell.
    fn connect(&self, peer: SocketAddr) -> impl Future<Output = io::Result<()>> + Send {
        let _ = peer;
        async { Ok(()) }
    }
}

/// Datagrams received in one call: `len` bytes at the start of the buffer,
/// cut into datagrams of `stride` bytes (the last may be shorter), all from
/// `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// Bytes received.
    pub len: usize,
    /// The size of each datagram but the last.
    pub stride: usize,
    /// Who sent them.
    pub source: SocketAddr,
}

impl Segments {
    /// One datagram of `len` bytes.
    pub fn single(len: usize, source: SocketAddr) -> Self {
        Self {
            len,
            stride: len,
            source,
        }
    }

    /// The datagrams, as ranges of the buffer.
    pub fn ranges(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let (len, stride) = (self.len, self.stride.max(1));
        (0..len)
            .step_by(stride)
            .map(move |start| start..(start + stride).min(len))
    }
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
    /// Fills `dest` with random bytes: secure ones on a real network, the
    /// simulation's seeded ones in a simulation. Fails only when the
    /// system's generator cannot be read.
    fn fill_random(&self, dest: &mut [u8]) -> io::Result<()>;
    /// The wall-clock time since the Unix epoch: the system clock on a real
    /// network, a fixed start plus the simulated time in a simulation. Only
    /// connect tokens' expiry reads it.
    fn unix_time(&self) -> std::time::Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
    /// A random 64-bit number from [`fill_random`](Self::fill_random).
    fn random_u64(&self) -> io::Result<u64> {
        let mut bytes = [0u8; 8];
        self.fill_random(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }
}
