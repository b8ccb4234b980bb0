//! The client side: a [`Player`] joins a server, sends inputs, and keeps a
//! [`View`] of the game from what arrives — the newest snapshot, and the
//! events checked for gaps and repeats by their sequence numbers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use protowright::net::Net;
use protowright::rpc::Status;
use protowright::{
    Client, ClientConfig, Connection, Protocol as _, RecvError, SendError, Transport,
};

use crate::PROTOCOL_VERSION;
use crate::pb::{
    ClockRequest, Event, Input, JoinRequest, Lobby as _, LobbyClient, PlayerState, Snapshot,
    ToPlayer, Welcome, to_player,
};

/// What arrived from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The world at one tick (newer than any before: the channel is
    /// unreliable-sequenced).
    Snapshot(Snapshot),
    /// Something that happened (reliable, in order).
    Event(Event),
}

/// How an event's number compared with the one expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The next one.
    InOrder,
    /// `missing` events were skipped.
    Gap {
        /// How many.
        missing: u64,
    },
    /// Its number was seen already.
    Repeat,
}

/// A player's view of the game, built from what arrived. Bounded: it
/// keeps the newest snapshot and counters, not a log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The newest snapshot.
    pub newest: Option<Snapshot>,
    /// The tick of the first snapshot seen.
    pub first_tick: Option<u64>,
    /// Snapshots seen (each newer than the one before).
    pub snapshots: u64,
    /// Snapshots that arrived no newer than the newest: must stay 0.
    pub stale: u64,
    /// Events seen in order.
    pub events: u64,
    /// Events skipped (gaps in the numbering): must stay 0.
    pub lost_events: u64,
    /// Events that arrived again: must stay 0.
    pub repeated_events: u64,
    /// The number the next event should carry.
    pub next_event: u64,
}

impl View {
    /// Takes `snapshot` into the view; `false` (and counted as stale) when
    /// it is not newer than the newest.
    pub fn on_snapshot(&mut self, snapshot: &Snapshot) -> bool {
        if self
            .newest_tick()
            .is_some_and(|newest| snapshot.tick <= newest)
        {
            self.stale += 1;
            return false;
        }
        self.first_tick.get_or_insert(snapshot.tick);
        self.snapshots += 1;
        self.newest = Some(snapshot.clone());
        true
    }

    /// Checks `event`'s number against the one expected, and counts it.
    pub fn on_event(&mut self, event: &Event) -> Order {
        if event.seq < self.next_event {
            self.repeated_events += 1;
            return Order::Repeat;
        }
        let missing = event.seq - self.next_event;
        self.next_event = event.seq + 1;
        self.events += 1;
        if missing == 0 {
            Order::InOrder
        } else {
            self.lost_events += missing;
            Order::Gap { missing }
        }
    }

    /// The newest tick seen.
    pub fn newest_tick(&self) -> Option<u64> {
        self.newest.as_ref().map(|s| s.tick)
    }

    /// `player` in the newest snapshot.
    pub fn player(&self, player: u32) -> Option<&PlayerState> {
        self.newest
            .as_ref()
            .and_then(|s| s.players.iter().find(|p| p.id == player))
    }

    /// The share of ticks, from the first seen to the newest, whose
    /// snapshot never arrived.
    pub fn snapshot_loss(&self) -> f64 {
        match (self.first_tick, self.newest_tick()) {
            (Some(first), Some(newest)) => {
                let spanned = newest - first + 1;
                1.0 - self.snapshots as f64 / spanned as f64
            }
            _ => 0.0,
        }
    }

    /// Whether every guarantee held: no stale snapshot, no event lost or
    /// repeated.
    pub fn is_sound(&self) -> bool {
        self.stale == 0 && self.lost_events == 0 && self.repeated_events == 0
    }
}

/// A seated player: its connection, its welcome, its view.
///
/// Dropping it (or [`leave`](Self::leave)) closes its connection; the
/// server tells the others it left. A lost connection ends the game for
/// this player ([`next`](Self::next) fails): rejoining is a new player.
#[derive(Debug)]
pub struct Player {
    client: Client,
    connection: Connection,
    welcome: Welcome,
    view: View,
    next_input: u32,
}

impl Player {
    /// Connects to the game server at `server` over reliable UDP and joins
    /// as `name`. Fails fast when no server answers, with the hint.
    pub async fn connect<N: Net>(
        net: N,
        server: SocketAddr,
        name: &str,
        config: ClientConfig,
    ) -> anyhow::Result<Self> {
        let client = Client::connect(net, Transport::Udp, server, config)
            .await
            .with_context(|| {
                format!("no game server answered at {server} (start one with `game server --listen {server}`)")
            })?;
        Self::join(client, name).await
    }

    /// Joins the game as `name` over `client`'s connection.
    pub async fn join(client: Client, name: &str) -> anyhow::Result<Self> {
        Self::join_as_version(client, name, PROTOCOL_VERSION).await
    }

    /// Joins claiming protocol `version`: for showing how a server refuses
    /// a client of another version.
    pub async fn join_as_version(client: Client, name: &str, version: u32) -> anyhow::Result<Self> {
        let connection = client.connection().await.map_err(|status| {
            client.close();
            anyhow::anyhow!("not connected to {}: {status}", client.server())
        })?;
        let request = JoinRequest {
            version,
            name: name.to_owned(),
        };
        let welcome = match LobbyClient::new(connection.clone()).join(request).await {
            Ok(welcome) => welcome,
            Err(status) => {
                client.close();
                return Err(anyhow::anyhow!(
                    "the game server at {} refused to seat {name}: {status}",
                    client.server()
                ));
            }
        };
        Ok(Self {
            client,
            connection,
            welcome,
            view: View::default(),
            next_input: 1,
        })
    }

    /// The player's id.
    pub fn id(&self) -> u32 {
        self.welcome.player
    }

    /// What the server said when seating the player.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The view so far.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The connection to the server.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Waits for the next snapshot or event and takes it into the view.
    /// `Ok(None)` once the server closed the connection cleanly.
    /// Cancel-safe: nothing is lost when the wait is abandoned.
    pub async fn next(&mut self) -> anyhow::Result<Option<Update>> {
        loop {
            let message = match self.connection.recv::<ToPlayer>().await {
                Ok(Some(message)) => message,
                Ok(None) => return Ok(None),
                // Something this version does not know: skip it.
                Err(RecvError::Decode { .. }) => continue,
                Err(error) => return Err(error.into()),
            };
            match message.into_kind() {
                Some(to_player::Kind::Snapshot(snapshot)) => {
                    self.view.on_snapshot(&snapshot);
                    return Ok(Some(Update::Snapshot(snapshot)));
                }
                Some(to_player::Kind::Event(event)) => {
                    self.view.on_event(&event);
                    return Ok(Some(Update::Event(event)));
                }
                None => continue,
            }
        }
    }

    /// Sends a movement intent (cut to one unit long by the server);
    /// returns its number. Never waits: an input that finds the send buffer
    /// full is dropped, like one lost on the way ([`SendError::Full`]).
    pub fn steer(&mut self, x: f32, y: f32) -> Result<u32, SendError> {
        let seq = self.next_input;
        self.next_input = self.next_input.wrapping_add(1).max(1);
        self.connection.try_send(Input { seq, x, y })?;
        Ok(seq)
    }

    /// A call that asks the server for its current tick, owning what it
    /// needs, so it can run while [`next`](Self::next) keeps reading.
    pub fn clock(&self) -> impl Future<Output = Result<u64, Status>> + Send + 'static {
        let lobby = LobbyClient::new(self.connection.clone()).with_timeout(Duration::from_secs(2));
        async move { lobby.clock(ClockRequest {}).await.map(|reply| reply.tick) }
    }

    /// The smoothed round-trip time the transport measures.
    pub fn rtt(&self) -> Option<Duration> {
        self.connection.stats().udp.map(|udp| udp.rtt)
    }

    /// Leaves the game: closes the connection gracefully.
    pub fn leave(self) {
        drop(self);
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.connection.close();
        self.client.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(tick: u64) -> Snapshot {
        Snapshot {
            tick,
            ..Snapshot::default()
        }
    }

    fn event(seq: u64) -> Event {
        Event {
            seq,
            ..Event::default()
        }
    }

    #[test]
    fn a_snapshot_no_newer_than_the_newest_is_stale_and_ignored() {
        let mut view = View::default();
        assert!(view.on_snapshot(&snapshot(5)));
        assert!(view.on_snapshot(&snapshot(7)));
        assert!(!view.on_snapshot(&snapshot(6)));
        assert!(!view.on_snapshot(&snapshot(7)));
        assert_eq!(view.newest_tick(), Some(7));
        assert_eq!(view.stale, 2);
        assert!(!view.is_sound());
        // Ticks 5 and 7 seen of 5..=7: one in three lost.
        assert!((view.snapshot_loss() - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn events_out_of_number_are_counted_as_lost_or_repeated() {
        let mut view = View::default();
        assert_eq!(view.on_event(&event(0)), Order::InOrder);
        assert_eq!(view.on_event(&event(1)), Order::InOrder);
        assert!(view.is_sound());
        assert_eq!(view.on_event(&event(1)), Order::Repeat);
        assert_eq!(view.on_event(&event(4)), Order::Gap { missing: 2 });
        assert_eq!(
            (view.events, view.lost_events, view.repeated_events),
            (3, 2, 1)
        );
        assert!(!view.is_sound());
    }
}
