//! Starting, observing and stopping a game server.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protowright::net::Net;
use protowright::{Server, ServerConfig, ServerHandle, Transport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::world::World;

use super::seat::accept;
use super::settings::{Observer, Quiet, Settings};
use super::shared::{Shared, State};
use super::ticker::tick;

/// A running game server. Stop it with [`shutdown`](Self::shutdown);
/// dropping it stops the world from ticking but leaves the transport
/// serving until the runtime ends.
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

    /// The transport-level handle (live connections and their counters).
    pub fn handle(&self) -> &protowright::ServerHandle {
        &self.handle
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
