//! The game in a deterministic simulation (protowright-sim): a server and
//! three players over reliable UDP, 20% datagram loss with jitter for the
//! first four seconds, then the heal.
//!
//! Test code records the server's state at every tick and each player's
//! view at every snapshot, and asserts that every view is the server's
//! state of its tick, and that within a few ticks of the heal every view
//! has caught up with the server. The run's History holds every event,
//! snapshot and input as sent and delivered per connection, so
//! `check::delivery()` holds events to exactly once in order, and
//! snapshots and inputs to never backwards (and, on the healed network, to
//! arriving).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use game::bots::heading;
use game::pb::{Event, Input, Snapshot};
use game::world::SplitMix;
use game::{GameServer, Observer, Player, Settings, Update};
use protowright::{Delivery, Transport};
use protowright_sim::history::Observation;
use protowright_sim::{Faults, History, Schedule, Sim, check};

const PORT: u16 = 9300;
const TICK_HZ: u32 = 30;
const PLAYERS: usize = 3;
/// When the faults heal.
const HEAL: Duration = Duration::from_secs(4);
/// How long after the heal the delivery checker wants what is owed.
const LIVENESS: Duration = Duration::from_secs(2);
/// When the players stop steering (so every input sent can land).
const STOP_STEERING: Duration = Duration::from_millis(6_500);
/// When the server stops the game and shuts down.
const STOP: Duration = Duration::from_secs(7);
/// How many ticks after the heal a view must have caught up.
const CATCH_UP_TICKS: u32 = 3;
/// How far a position in a view may be from the server's, in units.
const TOLERANCE: f32 = 1e-4;

/// A position: player, x, y.
type Positions = Vec<(u32, f32, f32)>;

/// What the test code saw, beside the History.
#[derive(Debug, Default)]
struct Record {
    /// The server's state at each tick, and when it was reached.
    server: BTreeMap<u64, (Duration, Positions)>,
    /// Each player's views: when, which tick, what it showed.
    views: BTreeMap<u32, Vec<(Duration, u64, Positions)>>,
    /// When each player joined.
    joined: BTreeMap<u32, Duration>,
}

#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Record>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Record> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

fn positions(snapshot: &Snapshot) -> Positions {
    snapshot.players.iter().map(|p| (p.id, p.x, p.y)).collect()
}

/// The flow of the server's connection to `player` (snapshots, events).
fn to_player(player: u32) -> u64 {
    u64::from(player)
}

/// The flow of `player`'s connection to the server (inputs).
fn from_player(player: u32) -> u64 {
    1_000 + u64::from(player)
}

/// Records what the server does: its state per tick, and what it sent.
struct Recorder {
    history: History,
    record: Shared,
}

impl Observer for Recorder {
    fn on_tick(&self, snapshot: &Snapshot) {
        let state = (now(), positions(snapshot));
        self.record.lock().server.insert(snapshot.tick, state);
    }

    fn on_snapshot_sent(&self, player: u32, tick: u64) {
        let flow = to_player(player);
        let delivery = Delivery::UnreliableSequenced;
        self.history.sent(flow, "snapshots", delivery, tick);
    }

    fn on_event(&self, player: u32, event: &Event) {
        let flow = to_player(player);
        let delivery = Delivery::ReliableOrdered;
        self.history.sent(flow, "events", delivery, event.seq);
    }

    fn on_input(&self, player: u32, input: &Input) {
        let flow = from_player(player);
        let delivery = Delivery::UnreliableSequenced;
        self.history
            .delivered(flow, "inputs", delivery, u64::from(input.seq), true);
    }
}

/// Runs one seed; returns what the test code recorded.
fn run(seed: u64) -> (Record, protowright_sim::Report) {
    let faults = Faults {
        loss: 0.2,
        jitter: Duration::from_millis(40),
        ..Faults::none()
    };
    let record = Shared::default();
    let server_record = record.clone();
    let mut sim = Sim::new(seed)
        .schedule(Schedule::none().with_faults(faults).heal_at(HEAL))
        .liveness_bound(LIVENESS)
        .host("server", move |ctx| {
            let record = server_record.clone();
            async move {
                let server = ctx.server(Transport::Udp, PORT).await?;
                let settings = Settings {
                    tick_hz: TICK_HZ,
                    seed: Some(seed),
                    ..Settings::default()
                };
                let recorder = Recorder {
                    history: ctx.history().clone(),
                    record,
                };
                let game = GameServer::start(server, settings, recorder)?;
                tokio::time::sleep(STOP.saturating_sub(ctx.now())).await;
                game.shutdown().await;
                Ok(())
            }
        });
    for n in 0..PLAYERS {
        let record = record.clone();
        sim = sim.client(&format!("player-{n}"), move |ctx| async move {
            let client = ctx.client(Transport::Udp, ctx.addr("server", PORT)).await?;
            let mut player = Player::join(client, &format!("player-{n}")).await?;
            let me = player.id();
            record.lock().joined.insert(me, now());
            let history = ctx.history();
            // Each player chases coins, with its own wobble.
            let mut rng = SplitMix(seed + n as u64);
            let mut steering = tokio::time::interval(Duration::from_secs(1) / TICK_HZ);
            loop {
                tokio::select! {
                    biased;
                    update = player.next() => match update? {
                        None => break,
                        Some(Update::Snapshot(snapshot)) => {
                            let seq = snapshot.tick;
                            history.delivered(to_player(me), "snapshots", Delivery::UnreliableSequenced, seq, true);
                            let view = (now(), snapshot.tick, positions(&snapshot));
                            record.lock().views.entry(me).or_default().push(view);
                        }
                        Some(Update::Event(event)) => {
                            history.delivered(to_player(me), "events", Delivery::ReliableOrdered, event.seq, true);
                        }
                    },
                    _ = steering.tick(), if now() < STOP_STEERING => {
                        let (x, y) = heading(&player, &mut rng);
                        if let Ok(seq) = player.steer(x, y) {
                            history.sent(from_player(me), "inputs", Delivery::UnreliableSequenced, u64::from(seq));
                        }
                    }
                }
            }
            Ok(())
        });
    }
    let report = sim
        .check(check::delivery())
        .run()
        .unwrap_or_else(|failure| panic!("{failure}"));
    let record = std::mem::take(&mut *record.lock());
    (record, report)
}

/// Every view shows exactly the server's state at its tick; and from
/// `CATCH_UP_TICKS` after the heal (or the join), at each server tick the
/// player's view is at most `CATCH_UP_TICKS` behind.
fn check_views(record: &Record) {
    let period = Duration::from_secs(1) / TICK_HZ;
    let catch_up = period * CATCH_UP_TICKS;
    let last_tick_at = record
        .server
        .values()
        .map(|(at, _)| *at)
        .max()
        .expect("ticks");
    assert_eq!(record.views.len(), PLAYERS, "every player saw snapshots");
    for (player, views) in &record.views {
        for (at, tick, shown) in views {
            let (_, truth) = &record.server[tick];
            assert_eq!(
                shown.len(),
                truth.len(),
                "player {player} at {at:?}, tick {tick}"
            );
            for (a, b) in shown.iter().zip(truth) {
                let close =
                    a.0 == b.0 && (a.1 - b.1).abs() <= TOLERANCE && (a.2 - b.2).abs() <= TOLERANCE;
                assert!(
                    close,
                    "player {player}'s view of tick {tick} shows {a:?}, the server had {b:?}"
                );
            }
        }
        let from = HEAL.max(record.joined[player]) + catch_up;
        for (tick, (at, _)) in record.server.range(1..) {
            if *at < from || *at + catch_up > last_tick_at {
                continue;
            }
            let newest = views
                .iter()
                .take_while(|(seen_at, ..)| *seen_at <= *at + catch_up)
                .map(|(_, seen, _)| *seen)
                .last();
            assert!(
                newest.is_some_and(|seen| seen >= *tick),
                "{CATCH_UP_TICKS} ticks after the server's tick {tick} (at {at:?}), player {player}'s view was at {newest:?}"
            );
        }
    }
}

/// The faults bit: datagrams were dropped, and some snapshots sent before
/// the heal never reached their player.
fn check_faults_bit(record: &Record, report: &protowright_sim::Report) {
    assert!(
        report.faults.dropped() > 0,
        "the fault layer dropped nothing"
    );
    let before_heal: Vec<u64> = record
        .server
        .iter()
        .filter(|(_, (at, _))| *at < HEAL)
        .map(|(tick, _)| *tick)
        .collect();
    let missed = record.views.values().any(|views| {
        before_heal
            .iter()
            .any(|tick| views.iter().all(|(_, seen, _)| seen != tick))
    });
    assert!(missed, "no player missed a snapshot under 20% loss");
}

#[test]
fn under_loss_and_jitter_every_view_converges_after_the_heal_and_no_event_is_lost_or_doubled() {
    for seed in [1, 2, 3] {
        let (record, report) = run(seed);
        let events = report
            .history
            .iter()
            .filter(
                |e| matches!(&e.what, Observation::Delivered { stream, .. } if stream == "events"),
            )
            .count();
        let views: Vec<usize> = record.views.values().map(Vec::len).collect();
        eprintln!(
            "seed {seed}: {} server ticks, snapshots seen per player {views:?}, {events} events delivered, {} datagrams dropped",
            record.server.len(),
            report.faults.dropped()
        );
        check_views(&record);
        check_faults_bit(&record, &report);
    }
}

#[test]
fn a_seed_replays_the_same_run() {
    let (_, first) = run(11);
    let (_, second) = run(11);
    assert_eq!(first.trace_hash, second.trace_hash);
}
