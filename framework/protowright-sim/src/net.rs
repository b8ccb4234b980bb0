//! The turmoil provider of `protowright::net`.
//!
//! Thin newtypes over turmoil's sockets: the traits and the socket types
//! both live in other crates, so each needs a local type to join them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use protowright::net::{Datagram, Listener, Net, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// turmoil's simulated network. Use it inside a turmoil host or client.
#[derive(Debug, Clone, Copy, Default)]
pub struct Turmoil;

/// A simulated TCP stream.
#[derive(Debug)]
pub struct SimStream(turmoil::net::TcpStream);

/// A simulated TCP listener.
pub struct SimListener(turmoil::net::TcpListener);

impl std::fmt::Debug for SimListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SimListener")
            .field(&self.0.local_addr().ok())
            .finish()
    }
}

/// A simulated UDP socket.
#[derive(Debug)]
pub struct SimDatagram(turmoil::net::UdpSocket);

impl Net for Turmoil {
    type Stream = SimStream;
    type Listener = SimListener;
    type Datagram = SimDatagram;

    async fn listen(&self, addr: SocketAddr) -> io::Result<SimListener> {
        turmoil::net::TcpListener::bind(addr).await.map(SimListener)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<SimStream> {
        turmoil::net::TcpStream::connect(addr).await.map(SimStream)
    }

    async fn bind_datagram(&self, addr: SocketAddr) -> io::Result<SimDatagram> {
        turmoil::net::UdpSocket::bind(addr).await.map(SimDatagram)
    }

    fn fill_random(&self, dest: &mut [u8]) -> io::Result<()> {
        crate::random::fill(dest);
        Ok(())
    }

    /// 2026-01-01T00:00:00Z plus the simulated time: the same in every run
    /// of a seed.
    fn unix_time(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1_767_225_600) + turmoil::sim_elapsed().unwrap_or_default()
    }
}

impl SimStream {
    /// The turmoil stream inside.
    pub fn into_inner(self) -> turmoil::net::TcpStream {
        self.0
    }
}

impl Stream for SimStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.set_nodelay(nodelay)
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Listener for SimListener {
    type Stream = SimStream;

    async fn accept(&self) -> io::Result<(SimStream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((SimStream(stream), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Datagram for SimDatagram {
    async fn send_to(&self, datagram: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.0.send_to(datagram, target).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
