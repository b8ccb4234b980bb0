//! The application's handle to one reliable-UDP connection: messages on
//! the four delivery lanes, typed protocol messages, and an RPC session
//! over the connection's session lane.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Error;
use super::endpoint::Owner;
use super::proto::{
    CLOSE_NORMAL, CloseReason, ConnectionHandle, ConnectionStats, Lane, Message, SendError,
};
use super::shared::{Shared, State};
use crate::rpc::{self, Service, Session};
use crate::{Delivery, MessageInfo, Protocol};

/// The most bytes of the session stream put in one message.
const SESSION_CHUNK: usize = 64 << 10;

/// One reliable-UDP connection. Cheap to clone; clones share it. Dropping
/// the last clone closes it gracefully: what was queued is still delivered.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
    handle: ConnectionHandle,
    peer: SocketAddr,
    notify: Arc<Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let now = Instant::now().into_std();
        state
            .engine
            .close(self.handle, now, CLOSE_NORMAL, "connection dropped");
        state.engine.discard(self.handle);
        state.connections.remove(&self.handle);
        drop(state);
        self.shared.wake_driver.notify_one();
    }
}

impl Connection {
    pub(super) fn new(
        shared: Arc<Shared>,
        owner: Arc<Owner>,
        handle: ConnectionHandle,
        peer: SocketAddr,
        notify: Arc<Notify>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                _owner: owner,
                handle,
                peer,
                notify,
            }),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// Waits until `poll` is ready, re-checking whenever the driver touches
    /// this connection.
    async fn wait_for<T>(
        &self,
        mut poll: impl FnMut(&mut State) -> Poll<Result<T, Error>>,
    ) -> Result<T, Error> {
        // The common case, ready at once, skips registering for a wake-up.
        if let Poll::Ready(result) = poll(&mut self.inner.shared.lock()) {
            return result;
        }
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.inner.shared.lock();
                if let Poll::Ready(result) = poll(&mut state) {
                    return result;
                }
            }
            notified.await;
        }
    }

    /// Why the connection can no longer be used, if it cannot.
    fn ended(&self, state: &State) -> Option<Error> {
        if let Some(failure) = &state.stopped {
            return Some(Error::EndpointClosed(failure.clone()));
        }
        let entry = state.connections.get(&self.inner.handle)?;
        entry.closed.as_ref().map(|reason| Error::Closed {
            peer: self.inner.peer,
            reason: reason.clone(),
        })
    }

    fn try_queue(
        &self,
        state: &mut State,
        lane: Lane,
        channel: u32,
        data: &Bytes,
    ) -> Poll<Result<(), Error>> {
        if let Some(error) = self.ended(state) {
            return Poll::Ready(Err(error));
        }
        let handle = self.inner.handle;
        let Some(connection) = state.engine.connection(handle) else {
            return Poll::Ready(Err(Error::EndpointClosed(None)));
        };
        if !connection.can_send(data.len() as u64) {
            return Poll::Pending;
        }
        match state.engine.send(handle, lane, channel, data.clone()) {
            Ok(()) => {
                self.inner.shared.wake_driver.notify_one();
                Poll::Ready(Ok(()))
            }
            Err(SendError::Full) => Poll::Pending,
            Err(source) => Poll::Ready(Err(Error::Send {
                peer: self.inner.peer,
                source,
            })),
        }
    }

    /// Sends a message with `delivery` on `channel`, waiting while the send
    /// buffer is full (the peer's window or the congestion window holds
    /// data back).
    pub async fn send(&self, delivery: Delivery, channel: u32, data: Bytes) -> Result<(), Error> {
        let lane = Lane::from(delivery);
        self.wait_for(|state| self.try_queue(state, lane, channel, &data))
            .await
    }

    /// Sends without waiting: a full send buffer is
    /// [`SendError::Full`].
    pub fn try_send(&self, delivery: Delivery, channel: u32, data: Bytes) -> Result<(), Error> {
        let mut state = self.inner.shared.lock();
        match self.try_queue(&mut state, Lane::from(delivery), channel, &data) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(Error::Send {
                peer: self.inner.peer,
                source: SendError::Full,
            }),
        }
    }

    /// Sends a schema message on the delivery and channel its schema
    /// options give it.
    pub async fn send_message<M: prost::Message + MessageInfo>(
        &self,
        message: &M,
    ) -> Result<(), Error> {
        self.send(
            M::DELIVERY,
            M::CHANNEL,
            Bytes::from(message.encode_to_vec()),
        )
        .await
    }

    /// Sends one message of protocol `P` (a schema's protocol root), on
    /// the delivery and channel of the member message: the receiver reads
    /// it with [`recv_protocol`](Self::recv_protocol).
    pub async fn send_protocol<P, M>(&self, message: M) -> Result<(), Error>
    where
        P: Protocol,
        M: MessageInfo + Into<P>,
    {
        let root: P = message.into();
        self.send(M::DELIVERY, M::CHANNEL, Bytes::from(root.encode_to_vec()))
            .await
    }

    /// Waits for the next message. After the connection ends, messages
    /// that arrived before its end are still returned; then the reason.
    pub async fn recv(&self) -> Result<Message, Error> {
        self.wait_for(|state| {
            let handle = self.inner.handle;
            state.route(handle, Lane::ReliableOrdered);
            let message = state
                .connections
                .get_mut(&handle)
                .and_then(|entry| entry.messages.pop_front());
            if let Some(message) = message {
                if message.lane.is_reliable()
                    && state.engine.release(handle, message.data.len() as u64)
                {
                    // A window update is due: the driver sends it.
                    self.inner.shared.wake_driver.notify_one();
                }
                return Poll::Ready(Ok(message));
            }
            match self.ended(state) {
                Some(error) => Poll::Ready(Err(error)),
                None if !state.connections.contains_key(&handle) => {
                    Poll::Ready(Err(Error::EndpointClosed(None)))
                }
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Waits for the next message and decodes it as protocol `P`.
    pub async fn recv_protocol<P: Protocol>(&self) -> Result<P, Error> {
        let message = self.recv().await?;
        P::decode(message.data).map_err(|source| Error::Decode {
            peer: self.inner.peer,
            lane: message.lane,
            channel: message.channel,
            source,
        })
    }

    /// Sets the priority of `channel` for the messages sent on it from now
    /// on: higher goes first (default 0), so give game state a higher
    /// priority than a file transfer on the same connection and it is
    /// never stuck behind the transfer's backlog. Applies to every lane's
    /// messages on that channel number.
    pub fn set_priority(&self, channel: u32, priority: i32) {
        let mut state = self.inner.shared.lock();
        state
            .engine
            .set_priority(self.inner.handle, channel, priority);
    }

    /// Closes gracefully: what was queued is delivered and acknowledged
    /// first (within the idle timeout), then the peer is told `code` and
    /// `reason`.
    pub fn close(&self, code: u64, reason: &str) {
        let mut state = self.inner.shared.lock();
        let now = Instant::now().into_std();
        state.engine.close(self.inner.handle, now, code, reason);
        drop(state);
        self.inner.shared.wake_driver.notify_one();
    }

    /// Closes at once, dropping whatever is queued.
    pub fn abort(&self, code: u64, reason: &str) {
        let mut state = self.inner.shared.lock();
        let now = Instant::now().into_std();
        state.engine.abort(self.inner.handle, now, code, reason);
        drop(state);
        self.inner.shared.wake_driver.notify_one();
    }

    /// Waits for the connection to end and says why.
    pub async fn closed(&self) -> CloseReason {
        let result = self
            .wait_for(|state| match self.ended(state) {
                Some(Error::Closed { reason, .. }) => Poll::Ready(Ok(reason)),
                Some(error) => Poll::Ready(Ok(CloseReason::Local {
                    code: CLOSE_NORMAL,
                    reason: error.to_string(),
                })),
                None => Poll::Pending,
            })
            .await;
        result.unwrap_or_else(|error: Error| CloseReason::Local {
            code: CLOSE_NORMAL,
            reason: error.to_string(),
        })
    }

    /// Counters and estimates; `None` once the endpoint forgot the
    /// connection.
    pub fn stats(&self) -> Option<ConnectionStats> {
        let state = self.inner.shared.lock();
        state
            .engine
            .connection(self.inner.handle)
            .map(|c| c.stats())
    }

    /// Runs an RPC session over this connection's session lane (reliable,
    /// ordered, apart from the application's channels), serving incoming
    /// calls with `service`. Generated clients call through
    /// [`Session::client`]. At most one session per connection.
    pub fn rpc<S: Service>(&self, service: S, config: rpc::Config) -> Session {
        let stream = SessionStream {
            connection: self.clone(),
        };
        Session::spawn(stream, self.inner.peer.to_string(), service, config)
    }
}

/// The session lane as an ordered byte stream, for [`Session`].
#[derive(Debug)]
struct SessionStream {
    connection: Connection,
}

impl SessionStream {
    fn register(state: &mut State, handle: ConnectionHandle, cx: &Context<'_>) {
        if let Some(entry) = state.connections.get_mut(&handle)
            && !entry.wakers.iter().any(|waker| waker.will_wake(cx.waker()))
        {
            entry.wakers.push(cx.waker().clone());
        }
    }
}

impl AsyncRead for SessionStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let inner = &self.connection.inner;
        let mut state = inner.shared.lock();
        state.route(inner.handle, Lane::Session);
        let ended = self.connection.ended(&state).is_some();
        let Some(entry) = state.connections.get_mut(&inner.handle) else {
            return Poll::Ready(Ok(()));
        };
        if let Some(front) = entry.session.front_mut() {
            let len = front.len().min(buf.remaining());
            buf.put_slice(&front[..len]);
            front.advance(len);
            if front.is_empty() {
                entry.session.pop_front();
            }
            if state.engine.release(inner.handle, len as u64) {
                inner.shared.wake_driver.notify_one();
            }
            return Poll::Ready(Ok(()));
        }
        if ended {
            // The end of the stream.
            return Poll::Ready(Ok(()));
        }
        Self::register(&mut state, inner.handle, cx);
        Poll::Pending
    }
}

impl AsyncWrite for SessionStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let inner = &self.connection.inner;
        let mut state = inner.shared.lock();
        let max = state
            .engine
            .connection(inner.handle)
            .map_or(SESSION_CHUNK as u64, |c| c.max_message());
        let len = buf.len().min(SESSION_CHUNK).min(max as usize);
        let data = Bytes::copy_from_slice(&buf[..len]);
        match self
            .connection
            .try_queue(&mut state, Lane::Session, 0, &data)
        {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(len)),
            Poll::Ready(Err(error)) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, error)))
            }
            Poll::Pending => {
                Self::register(&mut state, inner.handle, cx);
                Poll::Pending
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
