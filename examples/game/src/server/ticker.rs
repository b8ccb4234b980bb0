//! The fixed-rate loop: step the world, send every player the snapshot.

use std::sync::Arc;

use protowright::Connection;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::pb::event;

use super::shared::Shared;

/// Steps the world once per tick until told to stop; sends each tick's
/// snapshot to every player.
pub(super) async fn tick(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
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
