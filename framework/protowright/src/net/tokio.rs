//! The real-socket provider, on tokio.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Mutex;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::{Datagram, Listener, Net, Segments, Stream};

/// The socket buffers asked for (the kernel caps them at its maximum,
/// `net.core.rmem_max` and `wmem_max`): room for a window of large
/// datagrams, so a burst is not dropped by the receiving socket.
const SOCKET_BUFFER: usize = 4 << 20;

/// Real operating-system sockets through tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Net for Tokio {
    type Stream = TcpStream;
    type Listener = TcpListener;
    type Datagram = TokioDatagram;

    async fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect(addr).await
    }

    async fn bind_datagram(&self, addr: SocketAddr) -> io::Result<TokioDatagram> {
        TokioDatagram::new(UdpSocket::bind(addr).await?)
    }

    fn fill_random(&self, dest: &mut [u8]) -> io::Result<()> {
        getrandom::fill(dest).map_err(io::Error::other)
    }
}

impl Stream for TcpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::local_addr(self)
    }

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        TcpStream::set_nodelay(self, nodelay)
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

impl Datagram for UdpSocket {
    async fn send_to(&self, datagram: &[u8], target: SocketAddr) -> io::Result<usize> {
        UdpSocket::send_to(self, datagram, target).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        UdpSocket::recv_from(self, buf).await
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        match UdpSocket::try_recv_from(self, buf) {
            Ok(received) => Ok(Some(received)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }
}

/// A UDP socket set up for a datagram transport: the don't-fragment bit
/// set (so path MTU discovery sees what the path carries instead of IP
/// fragments), segmentation offload for sends (GSO) and receives (GRO)
/// where the kernel has them, and large socket buffers.
#[derive(Debug)]
pub struct TokioDatagram {
    socket: UdpSocket,
    state: UdpSocketState,
    /// Datagrams a coalesced receive brought beyond the first, for callers
    /// of `recv_from`, which returns one at a time.
    leftover: Mutex<VecDeque<(Vec<u8>, SocketAddr)>>,
}

impl TokioDatagram {
    /// Sets `socket` up. Fails only when the socket cannot be made
    /// non-blocking; options the platform lacks are skipped.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        // Best effort: the kernel caps these, and a smaller buffer only
        // costs throughput.
        let _ = state.set_recv_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER);
        let _ = state.set_send_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER);
        Ok(Self {
            socket,
            state,
            leftover: Mutex::new(VecDeque::new()),
        })
    }

    /// The tokio socket underneath.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    async fn send(
        &self,
        contents: &[u8],
        segment_size: Option<usize>,
        target: SocketAddr,
    ) -> io::Result<()> {
        let transmit = Transmit {
            destination: target,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        self.socket
            .async_io(Interest::WRITABLE, || {
                self.state
                    .try_send(UdpSockRef::from(&self.socket), &transmit)
            })
            .await
    }

    fn recv_now(&self, buf: &mut [u8]) -> io::Result<Segments> {
        let mut meta = [RecvMeta::default()];
        let mut bufs = [IoSliceMut::new(buf)];
        self.socket.try_io(Interest::READABLE, || {
            self.state
                .recv(UdpSockRef::from(&self.socket), &mut bufs, &mut meta)
        })?;
        let [meta] = meta;
        Ok(Segments {
            len: meta.len,
            stride: meta.stride.max(1),
            source: meta.addr,
        })
    }

    fn take_leftover(&self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        let mut leftover = self.leftover.lock().unwrap_or_else(|e| e.into_inner());
        let (datagram, source) = leftover.pop_front()?;
        let len = datagram.len().min(buf.len());
        buf[..len].copy_from_slice(&datagram[..len]);
        Some((len, source))
    }

    /// The first datagram of `segments` stays in `buf`; the rest are kept
    /// for the next `recv_from`.
    fn keep_rest(&self, buf: &[u8], segments: Segments) -> (usize, SocketAddr) {
        let mut ranges = segments.ranges();
        let first = ranges.next().map_or(0, |range| range.len());
        let mut leftover = self.leftover.lock().unwrap_or_else(|e| e.into_inner());
        for range in ranges {
            leftover.push_back((buf[range].to_vec(), segments.source));
        }
        (first, segments.source)
    }
}

impl Datagram for TokioDatagram {
    async fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.socket.connect(peer).await
    }

    async fn send_to(&self, datagram: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.send(datagram, None, target).await?;
        Ok(datagram.len())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        if let Some(received) = self.take_leftover(buf) {
            return Ok(received);
        }
        let segments = self.recv_segments(buf).await?;
        Ok(self.keep_rest(buf, segments))
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        if let Some(received) = self.take_leftover(buf) {
            return Ok(Some(received));
        }
        Ok(self
            .try_recv_segments(buf)?
            .map(|segments| self.keep_rest(buf, segments)))
    }

    fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    async fn send_segments(
        &self,
        contents: &[u8],
        segment_size: usize,
        target: SocketAddr,
    ) -> io::Result<()> {
        let segment_size = (contents.len() > segment_size).then_some(segment_size);
        self.send(contents, segment_size, target).await
    }

    async fn recv_segments(&self, buf: &mut [u8]) -> io::Result<Segments> {
        loop {
            self.socket.readable().await?;
            match self.recv_now(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }

    fn try_recv_segments(&self, buf: &mut [u8]) -> io::Result<Option<Segments>> {
        match self.recv_now(buf) {
            Ok(segments) => Ok(Some(segments)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (TokioDatagram, TokioDatagram) {
        let bind = || async {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            TokioDatagram::new(socket).expect("set up")
        };
        (bind().await, bind().await)
    }

    #[tokio::test]
    async fn a_segmented_send_arrives_as_its_datagrams_through_recv_from() {
        // Three 1000-byte datagrams and a shorter last one in one call; the
        // kernel may coalesce them on receipt (GRO), and recv_from still
        // hands them over one at a time, in order.
        let (sender, receiver) = pair().await;
        let target = receiver.local_addr().expect("address");
        let mut contents = Vec::new();
        for index in 0..4u8 {
            let len = if index == 3 { 300 } else { 1000 };
            contents.extend(std::iter::repeat_n(index, len));
        }
        sender
            .send_segments(&contents, 1000, target)
            .await
            .expect("send");
        let mut buf = vec![0u8; 65_536];
        for index in 0..4u8 {
            let (len, source) = receiver.recv_from(&mut buf).await.expect("receive");
            assert_eq!(source, sender.local_addr().expect("address"));
            assert_eq!(len, if index == 3 { 300 } else { 1000 });
            assert!(
                buf[..len].iter().all(|&byte| byte == index),
                "datagram {index}"
            );
        }
        assert_eq!(receiver.try_recv_from(&mut buf).expect("try"), None);
    }

    #[tokio::test]
    async fn recv_segments_reports_the_stride_of_what_arrived() {
        let (sender, receiver) = pair().await;
        let target = receiver.local_addr().expect("address");
        sender
            .send_segments(&[7u8; 2500], 1000, target)
            .await
            .expect("send");
        let mut buf = vec![0u8; 65_536];
        let mut lens = Vec::new();
        while lens.iter().sum::<usize>() < 2500 {
            let segments = receiver.recv_segments(&mut buf).await.expect("receive");
            lens.extend(segments.ranges().map(|range| range.len()));
        }
        assert_eq!(lens, [1000, 1000, 500]);
    }
}
