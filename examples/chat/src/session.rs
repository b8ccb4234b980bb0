//! The client side: one nickname on one server, kept in its room across
//! reconnects.
//!
//! [`Session::connect`] connects (failing fast when no server answers) and
//! joins. From then on a task of the session's own (the driver) reads the
//! server's pushed events and hands them to the application as
//! [`Update`]s; when the connection is lost, protowright's client
//! reconnects, and the driver joins the room again on the new connection,
//! presenting the session's secret so the server hands the nickname over
//! from the old connection even if it has not yet noticed that one died.
//!
//! ```text
//! Session::say/join/leave/list ──> the connection the nickname is on ──> server
//! server ──> connection.recv::<Event>() ──> driver ──> Updates::next()
//! connection lost ──> Update::Disconnected ──> reconnect ──> Join again ──> Update::Rejoined
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use protowright::net::Net;
use protowright::rpc::{Code, Status};
use protowright::{Client, ClientConfig, Connection, ConnectionState};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::pb;

mod driver;

/// How a [`Session`] behaves. Defaults: protowright's client defaults, 5 s
/// per call, a secret drawn from the network's randomness, 1,024 updates
/// buffered.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The transport client's settings (timeouts, reconnect backoff).
    pub config: ClientConfig,
    /// The longest a call may take, waiting for a connection included.
    pub call_timeout: Duration,
    /// The secret that lets this session take its nickname back after a
    /// reconnect (see `JoinRequest.resume`); `None` draws one.
    pub resume: Option<u64>,
    /// Updates buffered for the application. When the application stops
    /// taking them, the session stops reading its connection; the server's
    /// bounded queue for this member then fills and drops the oldest.
    pub updates: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            config: ClientConfig::default(),
            call_timeout: Duration::from_secs(5),
            resume: None,
            updates: 1024,
        }
    }
}

/// What happened, in the order the session learnt of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Another member said a line in the room.
    Said(pb::Said),
    /// Someone entered the room.
    Joined(pb::Joined),
    /// Someone left the room.
    Left(pb::Left),
    /// The server dropped this many events for this session, which was not
    /// reading fast enough.
    Missed(u64),
    /// The connection was lost; the session is reconnecting.
    Disconnected {
        /// Why it was lost.
        reason: String,
    },
    /// Reconnected and back in the room: its members and recent history.
    Rejoined(pb::JoinReply),
    /// Reconnected, in no room (none had been joined, or it was left).
    Reconnected,
    /// Reconnected, but the room could not be entered again (the nickname
    /// was taken meanwhile, say); the session is in no room.
    RejoinFailed(Status),
}

/// Why [`Session::connect`] failed.
#[derive(Debug)]
pub enum ConnectError {
    /// No connection could be made (nothing listens there, or it did not
    /// answer in time), or it failed before the join was answered.
    Connect(protowright::Error),
    /// The server refused the join: a bad or taken nickname, a bad room.
    Refused(Status),
}

impl ConnectError {
    /// The server's refusal, when it refused.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Refused(status) => Some(status),
            Self::Connect(_) => None,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(error) => write!(f, "{error}"),
            Self::Refused(status) => write!(f, "the server refused to let you in: {status}"),
        }
    }
}

/// The text says everything: the framework's error (with its hint) or the
/// server's refusal.
impl std::error::Error for ConnectError {}

/// A chat session: a nickname on a server, in at most one room. Cheap to
/// clone; clones share it.
#[derive(Debug, Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

/// The [`Update`]s of a session, in order. `None` once the session has
/// ended (it was closed, or gave up reconnecting).
#[derive(Debug)]
pub struct Updates {
    receiver: mpsc::Receiver<Update>,
}

impl Updates {
    /// The next update, waiting for it.
    pub async fn next(&mut self) -> Option<Update> {
        self.receiver.recv().await
    }
}

#[derive(Debug)]
struct Shared {
    client: Client,
    nick: String,
    resume: u64,
    call_timeout: Duration,
    /// The room the session is in (or rejoins after a reconnect).
    room: Mutex<Option<String>>,
    /// Joins and leaves, the driver's rejoin included, one at a time.
    membership: tokio::sync::Mutex<()>,
    /// The connection the nickname is on; `None` while reconnecting.
    ready: watch::Sender<Option<Connection>>,
    /// Set by `close`: the end of the connection is no news.
    closing: AtomicBool,
}

impl Shared {
    fn room(&self) -> MutexGuard<'_, Option<String>> {
        self.room.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_over(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
            || matches!(
                self.client.state(),
                ConnectionState::Closed | ConnectionState::GaveUp { .. }
            )
    }
}

impl Session {
    /// Connects to `server` over `net` and `transport` and joins `room` as
    /// `nick`. Fails fast when no server answers; a refused join closes the
    /// connection again. Returns the session, its updates, and the room's
    /// members and recent history.
    pub async fn connect<N: Net>(
        net: N,
        transport: protowright::Transport,
        server: SocketAddr,
        nick: &str,
        room: &str,
        options: ClientOptions,
    ) -> Result<(Self, Updates, pb::JoinReply), ConnectError> {
        let resume = match options.resume {
            Some(resume) => resume,
            None => net.random_u64().map_err(|error| {
                ConnectError::Connect(protowright::Error::Connect {
                    addr: server,
                    transport,
                    reason: format!("no randomness for the session's secret: {error}"),
                    unreachable: false,
                })
            })?,
        };
        let client = Client::connect(net, transport, server, options.config)
            .await
            .map_err(ConnectError::Connect)?;
        let deadline = Instant::now() + options.call_timeout;
        let joined = match client.connection().await {
            Ok(connection) => join_on(&connection, nick, room, resume, deadline)
                .await
                .map(|reply| (connection, reply)),
            Err(status) => Err(status),
        };
        let (connection, reply) = match joined {
            Ok(joined) => joined,
            Err(status) => {
                client.close();
                if driver::is_transient(&status) {
                    // Not a refusal: the connection failed under the join.
                    return Err(ConnectError::Connect(protowright::Error::Connect {
                        addr: server,
                        transport,
                        reason: format!("joining failed: {status}"),
                        unreachable: false,
                    }));
                }
                return Err(ConnectError::Refused(status));
            }
        };
        let shared = Arc::new(Shared {
            client,
            nick: nick.to_owned(),
            resume,
            call_timeout: options.call_timeout,
            room: Mutex::new(Some(reply.room.clone())),
            membership: tokio::sync::Mutex::new(()),
            ready: watch::Sender::new(Some(connection.clone())),
            closing: AtomicBool::new(false),
        });
        let (sender, receiver) = mpsc::channel(options.updates.max(1));
        tokio::spawn(driver::drive(Arc::clone(&shared), connection, sender));
        Ok((Self { shared }, Updates { receiver }, reply))
    }

    /// The session's nickname.
    pub fn nick(&self) -> &str {
        &self.shared.nick
    }

    /// The room the session is in, if any.
    pub fn room(&self) -> Option<String> {
        self.shared.room().clone()
    }

    /// The server.
    pub fn server(&self) -> SocketAddr {
        self.shared.client.server()
    }

    /// Says `text` to the room; returns the line's number in the room.
    /// Not retried: a line that failed with `UNAVAILABLE` or
    /// `DEADLINE_EXCEEDED` may or may not have been said.
    pub async fn say(&self, text: &str) -> Result<u64, Status> {
        let deadline = self.deadline();
        let chat = self.ready(deadline).await?;
        let request = pb::SayRequest { text: text.into() };
        let reply = within(deadline, pb::Chat::say(&chat, request)).await?;
        Ok(reply.seq)
    }

    /// Moves to `room` (leaving the current one); returns its members and
    /// recent history.
    pub async fn join(&self, room: &str) -> Result<pb::JoinReply, Status> {
        let deadline = self.deadline();
        let connection = self.ready(deadline).await?.channel().clone();
        let _membership = self.shared.membership.lock().await;
        let shared = &self.shared;
        let reply = join_on(&connection, &shared.nick, room, shared.resume, deadline).await?;
        *shared.room() = Some(reply.room.clone());
        Ok(reply)
    }

    /// Leaves the room; returns its name.
    pub async fn leave(&self) -> Result<String, Status> {
        let deadline = self.deadline();
        let chat = self.ready(deadline).await?;
        let _membership = self.shared.membership.lock().await;
        let result = within(deadline, pb::Chat::leave(&chat, pb::LeaveRequest {})).await;
        match result {
            Ok(reply) => {
                *self.shared.room() = None;
                Ok(reply.room)
            }
            Err(status) => {
                if status.code() == Code::FailedPrecondition {
                    *self.shared.room() = None;
                }
                Err(status)
            }
        }
    }

    /// The rooms and their members.
    pub async fn list(&self) -> Result<Vec<pb::RoomInfo>, Status> {
        let deadline = self.deadline();
        let chat = self.ready(deadline).await?;
        let reply = within(deadline, pb::Chat::list(&chat, pb::ListRequest {})).await?;
        Ok(reply.rooms)
    }

    /// Leaves the room (if connected and in one) and closes the
    /// connection; the updates end.
    pub async fn quit(&self) {
        let connected = self.shared.ready.borrow().is_some();
        if connected && self.room().is_some() {
            let _ = self.leave().await;
        }
        self.close();
    }

    /// Closes the connection at once, without leaving: the server sees the
    /// member disconnect. The updates end.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shared.client.close();
        self.shared.ready.send_replace(None);
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.shared.call_timeout
    }

    /// A client on the connection the nickname is on, with what is left
    /// until `deadline` as its timeout; waits while reconnecting.
    async fn ready(&self, deadline: Instant) -> Result<pb::ChatClient<Connection>, Status> {
        let mut ready = self.shared.ready.subscribe();
        let waited = tokio::time::timeout_at(deadline, ready.wait_for(Option::is_some)).await;
        let connection = match waited {
            Ok(Ok(connection)) => connection.clone(),
            _ if self.shared.is_over() => {
                return Err(Status::unavailable("the session is closed"));
            }
            _ => {
                return Err(Status::unavailable(format!(
                    "not connected to {} (reconnecting); try again",
                    self.server()
                )));
            }
        };
        let Some(connection) = connection else {
            return Err(Status::unavailable("the session is closed"));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        Ok(pb::ChatClient::new(connection).with_timeout(left))
    }
}

/// Runs `call`, failing it with `DEADLINE_EXCEEDED` at `deadline`.
async fn within<T>(
    deadline: Instant,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout_at(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(
            "the server did not answer in time",
        )),
    }
}

/// Joins `room` as `nick` on `connection`, by `deadline`.
async fn join_on(
    connection: &Connection,
    nick: &str,
    room: &str,
    resume: u64,
    deadline: Instant,
) -> Result<pb::JoinReply, Status> {
    let left = deadline.saturating_duration_since(Instant::now());
    let chat = pb::ChatClient::new(connection.clone()).with_timeout(left);
    let request = pb::JoinRequest {
        nick: nick.into(),
        room: room.into(),
        resume,
    };
    within(deadline, pb::Chat::join(&chat, request)).await
}
