//! The server: the `Chat` service on every connection, a pump per member
//! that pushes its events, and a watcher per connection that takes the
//! member out of its room when the connection ends.
//!
//! ```text
//! accept ──> Incoming::serve_with(|connection| ...)
//!              ├─ Service { member }       calls: join/say/leave/list ──> Lobby (one lock)
//!              ├─ pump(connection, outbox)  outbox ──> connection.send(event)
//!              └─ watch(connection)         connection.closed() ──> Lobby::detach
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protowright::net::Net;
use protowright::rpc::Status;
use protowright::{Connection, Server, ServerConfig, ServerHandle, Transport};

use crate::lobby::{Limits, Lobby, LobbyStats, MemberId};
use crate::outbox::{Next, Outbox, QueueStats};
use crate::pb;

type Shared = Arc<Mutex<Lobby>>;

fn lock(lobby: &Shared) -> MutexGuard<'_, Lobby> {
    lobby.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A chat server running on a task of its own.
#[derive(Debug, Clone)]
pub struct Running {
    addr: SocketAddr,
    transport: Transport,
    handle: ServerHandle,
    lobby: Shared,
}

impl Running {
    /// The address it listens on (with the port the system chose, when
    /// bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The transport it serves.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The server's bounds.
    pub fn limits(&self) -> Limits {
        lock(&self.lobby).limits()
    }

    /// The chat's counters now.
    pub fn stats(&self) -> LobbyStats {
        lock(&self.lobby).stats()
    }

    /// The queue counters of the member called `nick`; `None` when nobody
    /// holds that nickname.
    pub fn member_queue(&self, nick: &str) -> Option<QueueStats> {
        lock(&self.lobby).member_queue(nick)
    }

    /// The transport-level handle (connection counts, shutdown).
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Stops accepting, lets calls in flight finish, closes every
    /// connection, and waits until that is done.
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }
}

/// Starts a chat server on `addr` over `net` and `transport`, with the
/// transport settings `config` and the chat's bounds `limits`. Must be
/// called inside a tokio runtime; the server runs on a task of its own
/// until [`Running::shutdown`].
pub async fn serve<N: Net>(
    net: N,
    transport: Transport,
    addr: SocketAddr,
    config: ServerConfig,
    limits: Limits,
) -> Result<Running, protowright::Error> {
    let mut server = Server::bind(net, transport, addr, config).await?;
    let running = Running {
        addr: server.local_addr(),
        transport,
        handle: server.handle(),
        lobby: Arc::new(Mutex::new(Lobby::new(limits))),
    };
    let lobby = Arc::clone(&running.lobby);
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            incoming.serve_with(|connection| attach(&lobby, connection));
        }
    });
    Ok(running)
}

/// Seats a new connection in the lobby and starts its pump and watcher.
fn attach(lobby: &Shared, connection: &Connection) -> pb::ChatServer<Service> {
    let mut guard = lock(lobby);
    let outbox = Arc::new(Outbox::new(guard.limits().member_queue));
    let member = guard.attach(Arc::clone(&outbox));
    drop(guard);
    tokio::spawn(pump(connection.clone(), outbox));
    tokio::spawn(watch(connection.clone(), Arc::clone(lobby), member));
    pb::ChatServer::new(Service {
        lobby: Arc::clone(lobby),
        member,
    })
}

/// Sends a member's events, in order, waiting on the connection as long
/// as it needs: only this member's queue fills meanwhile.
async fn pump(connection: Connection, outbox: Arc<Outbox>) {
    while let Some(next) = outbox.next().await {
        let sent = match next {
            Next::Missed(count) => connection.send(pb::Missed { count }).await,
            Next::Event(event) => connection.send(event).await,
        };
        if let Err(error) = sent {
            tracing::debug!(peer = connection.peer(), %error, "a member's connection ended");
            return;
        }
    }
    // The outbox was closed: the member's connection ended, or a newer
    // connection took its nickname over. Either way this one is done.
    connection.close();
}

/// Takes the member out of the lobby when its connection ends.
async fn watch(connection: Connection, lobby: Shared, member: MemberId) {
    if let Err(error) = connection.closed().await {
        tracing::debug!(peer = connection.peer(), %error, "a connection failed");
    }
    lock(&lobby).detach(member);
}

/// The `Chat` service of one connection.
#[derive(Debug)]
pub struct Service {
    lobby: Shared,
    member: MemberId,
}

impl pb::Chat for Service {
    async fn join(&self, request: pb::JoinRequest) -> Result<pb::JoinReply, Status> {
        lock(&self.lobby).join(self.member, request)
    }

    async fn say(&self, request: pb::SayRequest) -> Result<pb::SayReply, Status> {
        lock(&self.lobby).say(self.member, request.text)
    }

    async fn leave(&self, _request: pb::LeaveRequest) -> Result<pb::LeaveReply, Status> {
        lock(&self.lobby).leave(self.member)
    }

    async fn list(&self, _request: pb::ListRequest) -> Result<pb::ListReply, Status> {
        Ok(lock(&self.lobby).list())
    }
}
