//! One connection, on either transport: typed protocol messages both ways,
//! calls both ways, server push.
//!
//! A [`Connection`] runs an RPC session (calls, with deadlines, cancels and
//! retries) and carries the schema's protocol messages. Over TCP (and in
//! memory) both travel as envelopes on one stream, so every message is
//! reliable and ordered. Over reliable UDP the session has a lane of its
//! own and each protocol message takes the delivery and channel its schema
//! options give it. The operations, their errors and their backpressure
//! are the same on both.

mod messages;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;

pub use messages::Messages;
pub use stats::ConnectionStats;

use crate::error::{ConnectionError, RecvError, SendError};
use crate::rpc::StreamLink;
use crate::rpc::{self, CallOptions, Channel, Service, Status};
use crate::schema::{Method, Outgoing, Protocol, Route};
use crate::transport::Transport;
use crate::udp;

/// One connection to a peer, on either transport. Cheap to clone; clones
/// share it.
///
/// - [`send`](Self::send) a protocol message (the schema's message type or
///   its protocol root: no type annotation needed) and
///   [`recv`](Self::recv) the protocol root's messages, in a loop, as a
///   typed stream;
/// - make calls with a generated client (`GreeterClient::new(connection)`:
///   `Connection` is an [`rpc::Channel`]);
/// - serve a generated service on it (given when it is made: see
///   [`Incoming`](crate::Incoming) and [`Client`](crate::Client)).
///
/// The connection closes when [`close`](Self::close) is called, when the
/// peer closes it, when it fails, or when every handle is dropped (a server
/// holds its connections until they end or it shuts down).
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    session: rpc::Client,
    peer_addr: Option<SocketAddr>,
    path: Path,
}

/// Where protocol messages travel.
#[derive(Debug)]
enum Path {
    /// As MESSAGE envelopes in the session (TCP, in memory).
    Session { transport: Option<Transport> },
    /// On the reliable-UDP connection's lanes, apart from the session.
    Udp(udp::Connection),
}

impl Connection {
    /// A connection over a byte stream (TCP, or a pipe in memory when
    /// `peer_addr` is `None`), serving `make_service`'s service.
    pub(crate) fn over_stream<IO, S>(
        io: IO,
        peer: String,
        peer_addr: Option<SocketAddr>,
        config: rpc::Config,
        make_service: impl FnOnce(&Connection) -> S,
    ) -> Self
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
        S: Service,
    {
        let link = StreamLink::new(io, peer.clone(), &config);
        let pending = rpc::Pending::new(peer, config);
        let transport = peer_addr.map(|_| Transport::Tcp);
        let connection = Self::new(pending.client(), peer_addr, Path::Session { transport });
        let service = make_service(&connection);
        pending.start(link, service);
        connection
    }

    /// A connection over a reliable-UDP connection: the session on its
    /// session lane, protocol messages on its other lanes.
    ///
    /// The session's frame limit is lowered to the largest message the peer
    /// accepts, so an oversized call fails here instead of on the wire; its
    /// heartbeats are off, because the UDP connection keeps itself alive and
    /// detects a silent peer on its own (`udp::Config::idle_timeout`).
    pub(crate) fn over_udp<S: Service>(
        raw: udp::Connection,
        mut config: rpc::Config,
        make_service: impl FnOnce(&Connection) -> S,
    ) -> Self {
        let max_message = usize::try_from(raw.max_message()).unwrap_or(usize::MAX);
        config.max_frame = config.max_frame.min(max_message).max(1);
        config.heartbeat_interval = None;
        config.dead_peer_timeout = None;
        let peer = raw.peer_addr();
        let pending = rpc::Pending::new(peer.to_string(), config);
        let connection = Self::new(pending.client(), Some(peer), Path::Udp(raw.clone()));
        let service = make_service(&connection);
        pending.start(udp::link::SessionLink::new(raw.clone()), service);
        // A session that fails leaves the UDP connection open (its link
        // only closes it on a clean end): close it saying why, so the peer
        // learns now rather than at its idle timeout.
        let ended = connection.inner.session.ended();
        tokio::spawn(async move {
            if let Err(error) = ended.await {
                raw.close(udp::CLOSE_SESSION_FAILED, &error.to_string());
            }
        });
        connection
    }

    fn new(session: rpc::Client, peer_addr: Option<SocketAddr>, path: Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                session,
                peer_addr,
                path,
            }),
        }
    }

    /// Whether `other` is a handle to this very connection.
    pub(crate) fn same_as(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Who is on the other end: its address, or a name for a connection
    /// without one (in memory).
    pub fn peer(&self) -> &str {
        self.inner.session.peer()
    }

    /// The peer's address; `None` in memory.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer_addr
    }

    /// The transport under the connection; `None` in memory.
    pub fn transport(&self) -> Option<Transport> {
        match &self.inner.path {
            Path::Session { transport } => *transport,
            Path::Udp(_) => Some(Transport::Udp),
        }
    }

    /// The raw reliable-UDP connection under this one (its lanes,
    /// priorities and engine counters); `None` on other transports.
    pub fn udp(&self) -> Option<&udp::Connection> {
        match &self.inner.path {
            Path::Udp(raw) => Some(raw),
            Path::Session { .. } => None,
        }
    }

    /// Sends a protocol message: one of the messages a protocol root lists
    /// (or the root itself), on the delivery and channel its schema options
    /// give it — on TCP every message is reliable and in order.
    ///
    /// Returns once the message is queued, waiting while the outgoing queue
    /// (TCP) or send buffer (UDP) is full: that is the backpressure. Fails
    /// with [`SendError::TooLarge`] for a message over its schema's
    /// `max_size` or the connection's limit (nothing is sent), and
    /// [`SendError::Closed`] once the connection has ended.
    pub async fn send<M: Outgoing>(&self, message: M) -> Result<(), SendError> {
        let (route, root, len) = self.checked_root(message)?;
        match &self.inner.path {
            Path::Session { .. } => {
                let session = &self.inner.session;
                session.send_message(&root, len, route.name).await
            }
            Path::Udp(raw) => {
                let body = Bytes::from(root.encode_to_vec());
                let result = raw.send(route.delivery, route.channel, body).await;
                result.map_err(|error| self.udp_send_error(error, route))
            }
        }
    }

    /// Like [`send`](Self::send), but never waits: a full queue fails at
    /// once with [`SendError::Full`].
    pub fn try_send<M: Outgoing>(&self, message: M) -> Result<(), SendError> {
        let (route, root, len) = self.checked_root(message)?;
        match &self.inner.path {
            Path::Session { .. } => self.inner.session.try_send_message(&root, len, route.name),
            Path::Udp(raw) => raw
                .try_send(
                    route.delivery,
                    route.channel,
                    Bytes::from(root.encode_to_vec()),
                )
                .map_err(|error| self.udp_send_error(error, route)),
        }
    }

    /// The protocol root holding `message` and its encoded length, refused
    /// when it breaks its schema's `max_size`.
    fn checked_root<M: Outgoing>(
        &self,
        message: M,
    ) -> Result<(Route, M::Protocol, usize), SendError> {
        let route = message.route();
        let root = message.into_root();
        let len = root.encoded_len();
        if let Some(max) = route.max_size
            && len > max as usize
        {
            return Err(SendError::TooLarge {
                peer: self.peer().to_owned(),
                message: route.name,
                len,
                max: max as usize,
            });
        }
        Ok((route, root, len))
    }

    fn udp_send_error(&self, error: udp::Error, route: Route) -> SendError {
        let peer = self.peer().to_owned();
        match error {
            udp::Error::Send { source, .. } => match source {
                udp::proto::SendError::Full => SendError::Full { peer },
                udp::proto::SendError::TooLarge { len, max } => SendError::TooLarge {
                    peer,
                    message: route.name,
                    len: usize::try_from(len).unwrap_or(usize::MAX),
                    max: usize::try_from(max).unwrap_or(usize::MAX),
                },
                udp::proto::SendError::NoSuchChannel { channel, channels } => {
                    SendError::NoSuchChannel {
                        peer,
                        channel,
                        channels,
                    }
                }
                udp::proto::SendError::Closed => SendError::Closed {
                    peer,
                    reason: "the connection is closing or closed".into(),
                },
            },
            // Said once: the error's own text names the peer again.
            udp::Error::Closed { reason, .. } => SendError::Closed {
                peer,
                reason: reason.to_string(),
            },
            other => SendError::Closed {
                peer,
                reason: other.to_string(),
            },
        }
    }

    /// Waits for the next protocol message and decodes it as the protocol
    /// root `P`: `Ok(Some(message))`, then `Ok(None)` once the connection
    /// has closed cleanly and every message that arrived before was
    /// returned, or [`RecvError::Closed`] when it ended with an error.
    ///
    /// Call it in a loop: that is the connection's typed message stream.
    /// Messages the application does not take are held in a bounded queue;
    /// when it is full the peer is made to wait (on TCP that also holds up
    /// the calls behind them), so a connection whose peer sends messages
    /// must have them read.
    pub async fn recv<P: Protocol>(&self) -> Result<Option<P>, RecvError> {
        let body = match &self.inner.path {
            Path::Session { .. } => match self.inner.session.recv_message().await {
                Some(body) => body,
                None => return self.session_end(),
            },
            Path::Udp(raw) => match raw.recv().await {
                Ok(message) => message.data,
                Err(error) => return self.udp_end(error),
            },
        };
        self.decode_root(body).map(Some)
    }

    /// The protocol root's messages as a stream this task owns: like
    /// [`recv`](Self::recv) in a loop, but it takes every message waiting
    /// at once, so a message costs no lock of its own. The choice for a
    /// task that reads a connection's messages as fast as they come.
    ///
    /// ```no_run
    /// # use protowright::{Connection, Protocol, RecvError};
    /// // `Root`: the protocol root generated from your schema.
    /// async fn read_all<Root: Protocol + std::fmt::Debug>(connection: Connection) -> Result<(), RecvError> {
    ///     let mut messages = connection.messages::<Root>();
    ///     while let Some(message) = messages.next().await? {
    ///         println!("{message:?}");
    ///     }
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Messages it has taken are its own: a `recv` on another handle of the
    /// connection gets those after them.
    pub fn messages<P: Protocol>(&self) -> Messages<P> {
        Messages::new(self.clone())
    }

    /// Decodes a received body as the protocol root `P`.
    fn decode_root<P: Protocol>(&self, body: Bytes) -> Result<P, RecvError> {
        P::decode(body).map_err(|source| RecvError::Decode {
            peer: self.peer().to_owned(),
            protocol: std::any::type_name::<P>(),
            source,
        })
    }

    fn session_end<P>(&self) -> Result<Option<P>, RecvError> {
        match self.inner.session.ended_cleanly() {
            Some(false) => Err(RecvError::Closed {
                peer: self.peer().to_owned(),
                reason: self.inner.session.end_status().message().to_owned(),
            }),
            _ => Ok(None),
        }
    }

    fn udp_end<P>(&self, error: udp::Error) -> Result<Option<P>, RecvError> {
        use udp::CloseReason::{Local, Peer};
        match error {
            udp::Error::Closed {
                reason: Local { code, .. } | Peer { code, .. },
                ..
            } if code == udp::proto::CLOSE_NORMAL => Ok(None),
            udp::Error::Closed { reason, .. } => Err(RecvError::Closed {
                peer: self.peer().to_owned(),
                reason: reason.to_string(),
            }),
            other => Err(RecvError::Closed {
                peer: self.peer().to_owned(),
                reason: other.to_string(),
            }),
        }
    }

    /// Sets the priority of `channel` for messages sent on it from now on:
    /// higher goes first (default 0). On reliable UDP this keeps, say, game
    /// state ahead of a file transfer on the same connection; on TCP, where
    /// one stream carries everything in order, it does nothing.
    pub fn set_priority(&self, channel: u32, priority: i32) {
        if let Path::Udp(raw) = &self.inner.path {
            raw.set_priority(channel, priority);
        }
    }

    /// Measures one round trip to the peer's session.
    pub async fn ping(&self) -> Result<Duration, Status> {
        self.inner.session.ping().await
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.session.is_closed()
    }

    /// Closes gracefully: what was queued is sent first, then the
    /// connection ends. Calls still waiting fail with `UNAVAILABLE`.
    pub fn close(&self) {
        self.inner.session.close();
    }

    /// Tells the peer this side takes no new calls (`status` says why);
    /// calls in flight either way complete, then the connection closes.
    pub async fn go_away(&self, status: Status) {
        self.inner.session.go_away(status).await;
    }

    /// Like [`go_away`](Self::go_away), but never waits on a full queue
    /// (the GOAWAY is then skipped; the refusal of new calls still holds).
    pub(crate) fn try_go_away(&self, status: &Status) {
        self.inner.session.try_go_away(status);
    }

    /// Waits until the connection ends: `Ok(())` when it closed cleanly,
    /// otherwise why it failed.
    pub async fn closed(&self) -> Result<(), ConnectionError> {
        self.inner.session.closed().await
    }

    /// The connection's counters now.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            session: self.inner.session.stats(),
            udp: self.udp().and_then(udp::Connection::stats),
        }
    }

    /// The session's handle, for the server's bookkeeping.
    pub(crate) fn session(&self) -> &rpc::Client {
        &self.inner.session
    }
}

impl Channel for Connection {
    fn call(
        &self,
        method: &'static Method,
        request: Bytes,
        options: CallOptions,
    ) -> impl Future<Output = Result<Bytes, Status>> + Send {
        self.inner.session.call(method, request, options)
    }
}
