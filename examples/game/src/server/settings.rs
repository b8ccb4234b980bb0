//! How a game server runs, and what it reports as it runs.

use std::time::Duration;

use crate::MAX_PLAYERS;
use crate::pb::{Event, Input, Snapshot, event};

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
