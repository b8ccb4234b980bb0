//! The authoritative server: seats players through the `Lobby` service,
//! applies their inputs, steps the [`World`] at a fixed rate, and sends
//! every player a snapshot each tick and the events as they happen.
//!
//! Three kinds of task share one [`Shared`] state behind a mutex that is
//! never held across an `.await`:
//! - the **ticker** steps the world, queues the `Scored` events, and
//!   `try_send`s the snapshot to each player (a snapshot that finds the
//!   send buffer full is skipped: the next one supersedes it anyway);
//! - one **seat** task per connection reads its inputs, and reports the
//!   player as gone when the connection ends (or closes it when it never
//!   joins);
//! - one **outbox** task per player sends its events in order from a
//!   bounded queue. A player whose queue overflows is removed rather than
//!   let the server's memory grow: that is the bound per player.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use protowright::net::Net;
use protowright::rpc::{Code, Status};
use protowright::{
    Connection, MessageInfo as _, Protocol as _, RecvError, Server, ServerConfig, ServerHandle,
    Transport,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::pb::{
    ClockReply, ClockRequest, Event, Input, JoinRequest, Joined, Left, Lobby, LobbyServer,
    Snapshot, ToServer, Welcome, event, to_server,
};
use crate::world::World;
use crate::{MAX_PLAYERS, PROTOCOL_VERSION};

/// Why a player whose connection ended is gone.
const LEFT: &str = "left the game";

/// The longest display name kept, in characters.
const MAX_NAME: usize = 32;

/// How a game server runs.
///
/// Defaults: 30 ticks a second, 16 players, a random world seed, 5 s for a
/// connection to join before it is closed, 256 events queued per player.
#[derive(Debug, Clone)]
pub struct Settings {
    /// World steps (and snapshots) per second; 1 to 240.
    pub tick_hz: u32,
    /// Players seated at once; 1 to [`MAX_PLAYERS`] (so a snapshot fits
    /// one datagram). A join beyond it is refused with `RESOURCE_EXHAUSTED`.
    pub max_players: usize,
    /// The world's seed (coin and spawn positions); `None` draws one from
    /// the network's randomness.
    pub seed: Option<u64>,
    /// How long a connection may stay without joining before it is closed.
    pub join_timeout: Duration,
    /// Events queued for one player before it counts as unable to keep up
    /// and is removed.
    pub event_queue: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tick_hz: 30,
            max_players: 16,
            seed: None,
            join_timeout: Duration::from_secs(5),
            event_queue: 256,
        }
    }
}

impl Settings {
    /// Checks the settings can work; the error names the setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=240).contains(&self.tick_hz),
            "the tick rate must be 1 to 240 per second, not {}",
            self.tick_hz
        );
        anyhow::ensure!(
            (1..=MAX_PLAYERS).contains(&self.max_players),
            "the player limit must be 1 to {MAX_PLAYERS} (a snapshot must fit one datagram), not {}",
            self.max_players
        );
        anyhow::ensure!(
            !self.join_timeout.is_zero(),
            "the join timeout must be above zero"
        );
        anyhow::ensure!(
            self.event_queue > 0,
            "the event queue must hold at least one event"
        );
        Ok(())
    }

    /// The length of one tick.
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs(1) / self.tick_hz.max(1)
    }
}

/// What a server reports as it runs, for logs and tests. Every method
/// does nothing by default; they are called from the server's tasks, so
/// they must return quickly.
pub trait Observer: Send + Sync + 'static {
    /// The world stepped to `snapshot.tick`; `snapshot` is its state.
    fn on_tick(&self, snapshot: &Snapshot) {
        let _ = snapshot;
    }
    /// The snapshot of `tick` was handed to `player`'s connection.
    fn on_snapshot_sent(&self, player: u32, tick: u64) {
        let _ = (player, tick);
    }
    /// `event` was queued for `player` (each event is queued once per
    /// player, numbered per player).
    fn on_event(&self, player: u32, event: &Event) {
        let _ = (player, event);
    }
    /// Something happened that every player is told about.
    fn on_change(&self, tick: u64, change: &event::Kind) {
        let _ = (tick, change);
    }
    /// An input from `player` arrived (applied if newer than the last).
    fn on_input(&self, player: u32, input: &Input) {
        let _ = (player, input);
    }
}

/// An observer that observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// A running game server.
pub struct GameServer {
    shared: Arc<Shared>,
    handle: ServerHandle,
    stop: watch::Sender<bool>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for GameServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GameServer")
            .field("local_addr", &self.handle.local_addr())
            .field("tick", &self.tick())
            .field("players", &self.players())
            .finish()
    }
}

/// Binds a game server to `addr` on `net` (reliable UDP) and starts it.
/// The transport admits a few connections beyond `max_players`, so that a
/// client of a full game is told so by the game itself.
pub async fn serve<N: Net>(
    net: N,
    addr: SocketAddr,
    settings: Settings,
) -> anyhow::Result<GameServer> {
    serve_observed(net, addr, settings, Quiet).await
}

/// Like [`serve`], reporting to `observer`.
pub async fn serve_observed<N: Net>(
    net: N,
    addr: SocketAddr,
    settings: Settings,
    observer: impl Observer,
) -> anyhow::Result<GameServer> {
    settings.validate()?;
    let config = ServerConfig {
        max_connections: settings.max_players + 8,
        ..ServerConfig::default()
    };
    let server = Server::bind(net.clone(), Transport::Udp, addr, config).await?;
    let seed = match settings.seed {
        Some(seed) => seed,
        None => net.random_u64()?,
    };
    GameServer::start(
        server,
        Settings {
            seed: Some(seed),
            ..settings
        },
        observer,
    )
}

impl GameServer {
    /// Runs the game on a bound `server` (reliable UDP), reporting to
    /// `observer`. Must be called inside a tokio runtime. The world's seed
    /// is `settings.seed`, or 0.
    pub fn start(
        server: Server,
        settings: Settings,
        observer: impl Observer,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        anyhow::ensure!(
            server.transport() == Transport::Udp,
            "the game runs on reliable UDP only: snapshots are unreliable-sequenced"
        );
        let world = World::new(settings.seed.unwrap_or_default());
        let shared = Arc::new(Shared {
            settings,
            observer: Box::new(observer),
            state: Mutex::new(State {
                world,
                members: BTreeMap::new(),
                open: true,
            }),
        });
        let handle = server.handle();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept(server, Arc::clone(&shared)));
        let ticker = tokio::spawn(tick(Arc::clone(&shared), stopped));
        Ok(Self {
            shared,
            handle,
            stop,
            ticker: Mutex::new(Some(ticker)),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The world's current tick.
    pub fn tick(&self) -> u64 {
        self.shared.lock().world.tick()
    }

    /// The players seated now.
    pub fn players(&self) -> usize {
        self.shared.lock().members.len()
    }

    /// The transport's counters (connections, refusals).
    pub fn stats(&self) -> protowright::ServerStats {
        self.handle.stats()
    }

    /// Stops the game gracefully: the world stops ticking, every player's
    /// queued events are sent, then the server shuts down (GOAWAY, calls
    /// finish, connections close).
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let ticker = self
            .ticker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(ticker) = ticker {
            let _ = ticker.await;
        }
        let members = {
            let mut state = self.shared.lock();
            state.open = false;
            std::mem::take(&mut state.members)
        };
        // Dropping each queue's sender lets its outbox send what is left
        // and finish.
        let outboxes: Vec<_> = members.into_values().map(|m| m.outbox_task).collect();
        let drain = async {
            for task in outboxes {
                let _ = task.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        self.handle.shutdown().await;
    }
}

/// What the server's tasks share.
struct Shared {
    settings: Settings,
    observer: Box<dyn Observer>,
    state: Mutex<State>,
}

struct State {
    world: World,
    members: BTreeMap<u32, Member>,
    /// Whether players may still join.
    open: bool,
}

/// A seated player.
struct Member {
    connection: Connection,
    outbox: mpsc::Sender<Event>,
    outbox_task: JoinHandle<()>,
    /// The number of the next event for this player.
    next_seq: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every player `change`. A player whose queue is full is
    /// removed, and that is told too.
    fn broadcast(&self, state: &mut State, change: event::Kind) {
        let mut pending = vec![change];
        while let Some(change) = pending.pop() {
            let tick = state.world.tick();
            self.observer.on_change(tick, &change);
            let mut dropped = Vec::new();
            for (&player, member) in &mut state.members {
                let event = Event {
                    seq: member.next_seq,
                    tick,
                    kind: Some(change.clone()),
                };
                match member.outbox.try_send(event.clone()) {
                    Ok(()) => {
                        member.next_seq += 1;
                        self.observer.on_event(player, &event);
                    }
                    Err(TrySendError::Full(_)) => {
                        dropped.push((player, "removed: could not keep up with its events"));
                    }
                    // Its outbox ended with its connection: it is leaving,
                    // and its seat task has not noticed yet.
                    Err(TrySendError::Closed(_)) => dropped.push((player, LEFT)),
                }
            }
            for (player, reason) in dropped {
                if let Some(member) = state.members.remove(&player) {
                    state.world.remove_player(player);
                    member.connection.close();
                    pending.push(event::Kind::Left(Left {
                        player,
                        reason: reason.into(),
                    }));
                }
            }
        }
    }

    /// `player` is gone: out of the world, and everyone is told.
    fn leave(&self, player: u32, reason: &str) {
        let mut state = self.lock();
        if state.members.remove(&player).is_some() {
            state.world.remove_player(player);
            let left = Left {
                player,
                reason: reason.into(),
            };
            self.broadcast(&mut state, event::Kind::Left(left));
        }
    }
}

/// Seats each incoming connection and reads its inputs.
async fn accept(mut server: Server, shared: Arc<Shared>) {
    while let Some(incoming) = server.accept().await {
        let mut seat = None;
        incoming.serve_with(|connection| {
            let made = Arc::new(Seat {
                shared: Arc::clone(&shared),
                connection: connection.clone(),
                player: OnceLock::new(),
            });
            seat = Some(Arc::clone(&made));
            LobbyServer::from_arc(made)
        });
        if let Some(seat) = seat {
            tokio::spawn(play(seat));
        }
    }
}

/// One connection's place at the table: the `Lobby` service it is served
/// with, and its player once it joined.
struct Seat {
    shared: Arc<Shared>,
    connection: Connection,
    player: OnceLock<u32>,
}

impl Lobby for Seat {
    async fn join(&self, request: JoinRequest) -> Result<Welcome, Status> {
        if request.version != PROTOCOL_VERSION {
            return Err(Status::new(
                Code::FailedPrecondition,
                format!(
                    "this server speaks game protocol version {PROTOCOL_VERSION}, the client version {}: use a client of the same version",
                    request.version
                ),
            ));
        }
        let name: String = request.name.chars().take(MAX_NAME).collect();
        let shared = &self.shared;
        let mut state = shared.lock();
        if !state.open {
            return Err(Status::unavailable("the server is shutting down"));
        }
        if let Some(player) = self.player.get() {
            return Err(Status::new(
                Code::AlreadyExists,
                format!("this connection already plays as player {player}"),
            ));
        }
        let max = shared.settings.max_players;
        if state.members.len() >= max {
            return Err(Status::resource_exhausted(format!(
                "the game is full ({max} of {max} players); try again later"
            )));
        }
        let player = state.world.add_player();
        let _ = self.player.set(player);
        // The newest snapshot first: never stuck behind queued events.
        self.connection
            .set_priority(Snapshot::CHANNEL, SNAPSHOT_PRIORITY);
        self.connection.set_priority(Event::CHANNEL, EVENT_PRIORITY);
        let (outbox, queue) = mpsc::channel(shared.settings.event_queue);
        let outbox_task = tokio::spawn(send_events(self.connection.clone(), queue));
        state.members.insert(
            player,
            Member {
                connection: self.connection.clone(),
                outbox,
                outbox_task,
                next_seq: 0,
            },
        );
        let joined = Joined {
            player,
            name: name.clone(),
        };
        shared.broadcast(&mut state, event::Kind::Joined(joined));
        Ok(Welcome {
            player,
            tick_hz: shared.settings.tick_hz,
            tick: state.world.tick(),
            arena: Some(World::arena()),
        })
    }

    async fn clock(&self, _request: ClockRequest) -> Result<ClockReply, Status> {
        Ok(ClockReply {
            tick: self.shared.lock().world.tick(),
        })
    }
}

/// The snapshot channel's priority: above the events'.
const SNAPSHOT_PRIORITY: i32 = 1;
/// The event channel's priority.
const EVENT_PRIORITY: i32 = 0;

/// Reads a connection's inputs until it ends, then reports its player
/// gone. A connection that has not joined within the join timeout is
/// closed.
async fn play(seat: Arc<Seat>) {
    let shared = &seat.shared;
    let connection = &seat.connection;
    let deadline = Instant::now() + shared.settings.join_timeout;
    loop {
        let message = tokio::select! {
            biased;
            message = connection.recv::<ToServer>() => message,
            () = tokio::time::sleep_until(deadline), if seat.player.get().is_none() => {
                connection.go_away(Status::new(
                    Code::FailedPrecondition,
                    "no Join within the join timeout",
                )).await;
                connection.close();
                break;
            }
        };
        match message {
            Ok(Some(message)) => {
                let (Some(&player), Some(to_server::Kind::Input(input))) =
                    (seat.player.get(), message.into_kind())
                else {
                    continue;
                };
                shared.observer.on_input(player, &input);
                shared.lock().world.handle_input(player, &input);
            }
            // Another protocol's message: dropped, the connection stays.
            Err(RecvError::Decode { .. }) => {}
            Ok(None) | Err(_) => break,
        }
    }
    if let Some(&player) = seat.player.get() {
        shared.leave(player, LEFT);
    }
}

/// Sends one player's events in order until its queue closes (the player
/// left) or its connection ends.
async fn send_events(connection: Connection, mut queue: mpsc::Receiver<Event>) {
    while let Some(event) = queue.recv().await {
        if connection.send(event).await.is_err() {
            break;
        }
    }
}

/// Steps the world once per tick until told to stop; sends each tick's
/// snapshot to every player.
async fn tick(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let period = shared.settings.tick_period();
    let dt = period.as_secs_f32();
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = ticks.tick() => {}
        }
        let (snapshot, players) = {
            let mut state = shared.lock();
            for scored in state.world.step(dt) {
                shared.broadcast(&mut state, event::Kind::Scored(scored));
            }
            let players: Vec<(u32, Connection)> = state
                .members
                .iter()
                .map(|(&player, member)| (player, member.connection.clone()))
                .collect();
            (state.world.snapshot(), players)
        };
        shared.observer.on_tick(&snapshot);
        for (player, connection) in players {
            if connection.try_send(snapshot.clone()).is_ok() {
                shared.observer.on_snapshot_sent(player, snapshot.tick);
            }
        }
    }
}
