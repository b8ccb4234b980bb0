//! Bots: players that chase the nearest coin for a while, measure what
//! they see, and sum it up in one line.
//!
//! Each bot reads every snapshot and event, steers once per tick, and
//! samples how far its view lags behind the server every 250 ms: it asks
//! the server's tick (`Lobby.Clock`) while it keeps reading, and subtracts
//! the newest tick it has seen when the answer arrives.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use protowright::ClientConfig;
use protowright::net::Net;
use protowright::rpc::Status;
use tokio::time::{Instant, MissedTickBehavior};

use crate::player::{Player, View};
use crate::world::SplitMix;

/// How often a bot samples its view's lag.
const LAG_SAMPLE: Duration = Duration::from_millis(250);

/// What to run.
#[derive(Debug, Clone)]
pub struct BotSettings {
    /// How many bots.
    pub count: usize,
    /// How long they play.
    pub duration: Duration,
    /// Their clients' settings.
    pub client: ClientConfig,
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            count: 4,
            duration: Duration::from_secs(10),
            client: ClientConfig::default(),
        }
    }
}

/// What one bot saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The bot's player id.
    pub player: u32,
    /// Its view at the end.
    pub view: View,
    /// The transport's smoothed round-trip time at the end.
    pub rtt: Option<Duration>,
    /// Lag samples, in ticks: the server's tick minus the newest tick seen.
    pub lags: Vec<u64>,
    /// Inputs sent.
    pub inputs: u64,
}

/// What the bots saw, together: printed as one line.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// How long they played.
    pub duration: Duration,
    /// Each bot's report.
    pub bots: Vec<Report>,
}

impl Summary {
    /// The mean round-trip time over the bots that measured one.
    pub fn rtt(&self) -> Option<Duration> {
        let rtts: Vec<Duration> = self.bots.iter().filter_map(|b| b.rtt).collect();
        let count = u32::try_from(rtts.len()).ok().filter(|&n| n > 0)?;
        Some(rtts.iter().sum::<Duration>() / count)
    }

    /// The share of ticks whose snapshot never arrived, over all bots.
    pub fn snapshot_loss(&self) -> f64 {
        let (mut seen, mut spanned) = (0u64, 0u64);
        for bot in &self.bots {
            if let (Some(first), Some(newest)) = (bot.view.first_tick, bot.view.newest_tick()) {
                seen += bot.view.snapshots;
                spanned += newest - first + 1;
            }
        }
        if spanned == 0 {
            return 0.0;
        }
        1.0 - seen as f64 / spanned as f64
    }

    /// The mean and the largest lag sampled, in ticks.
    pub fn lag(&self) -> (f64, u64) {
        let lags: Vec<u64> = self.bots.iter().flat_map(|b| b.lags.clone()).collect();
        let max = lags.iter().copied().max().unwrap_or(0);
        let mean = if lags.is_empty() {
            0.0
        } else {
            lags.iter().sum::<u64>() as f64 / lags.len() as f64
        };
        (mean, max)
    }

    /// Whether every bot's view held the guarantees: snapshots never
    /// backwards, events exactly once in order.
    pub fn is_sound(&self) -> bool {
        self.bots.iter().all(|b| b.view.is_sound())
    }

    fn total(&self, count: impl Fn(&Report) -> u64) -> u64 {
        self.bots.iter().map(count).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rtt = self.rtt().map_or("-".to_owned(), |rtt| {
            format!("{:.1} ms", rtt.as_secs_f64() * 1e3)
        });
        let (lag, max_lag) = self.lag();
        write!(
            f,
            "{} bots, {:.1} s: rtt {rtt}, snapshot loss {:.1}%, view lag {lag:.1} ticks (max {max_lag}), \
             {} snapshots, {} events ({} lost, {} repeated, {} stale snapshots), {} coins",
            self.bots.len(),
            self.duration.as_secs_f64(),
            self.snapshot_loss() * 100.0,
            self.total(|b| b.view.snapshots),
            self.total(|b| b.view.events),
            self.total(|b| b.view.lost_events),
            self.total(|b| b.view.repeated_events),
            self.total(|b| b.view.stale),
            self.total(|b| b.view.player(b.player).map_or(0, |p| u64::from(p.score))),
        )
    }
}

/// Runs `settings.count` bots against the server at `server` for
/// `settings.duration`, all at once; fails when any cannot join (the
/// error says why: nothing listening, a full game, another version).
pub async fn bots<N: Net>(
    net: N,
    server: SocketAddr,
    settings: BotSettings,
) -> anyhow::Result<Summary> {
    anyhow::ensure!(settings.count > 0, "at least one bot is needed");
    let mut players = Vec::with_capacity(settings.count);
    for n in 1..=settings.count {
        let player = Player::connect(
            net.clone(),
            server,
            &format!("bot-{n}"),
            settings.client.clone(),
        )
        .await?;
        players.push((player, net.random_u64()?));
    }
    let until = Instant::now() + settings.duration;
    let tasks: Vec<_> = players
        .into_iter()
        .map(|(player, seed)| tokio::spawn(play(player, seed, until)))
        .collect();
    let mut summary = Summary {
        duration: settings.duration,
        bots: Vec::with_capacity(tasks.len()),
    };
    for task in tasks {
        summary.bots.push(task.await??);
    }
    Ok(summary)
}

type Pending = Pin<Box<dyn Future<Output = Result<u64, Status>> + Send>>;

/// One bot's game: read everything, steer each tick, sample the lag, until
/// `until`.
pub async fn play(mut player: Player, seed: u64, until: Instant) -> anyhow::Result<Report> {
    let mut rng = SplitMix(seed);
    let tick_hz = player.welcome().tick_hz.max(1);
    let mut steering = tokio::time::interval(Duration::from_secs(1) / tick_hz);
    steering.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut sampling = tokio::time::interval(LAG_SAMPLE);
    sampling.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut clock: Option<Pending> = None;
    let mut report = Report {
        player: player.id(),
        ..Report::default()
    };
    let end = tokio::time::sleep_until(until);
    tokio::pin!(end);
    loop {
        tokio::select! {
            biased;
            () = &mut end => break,
            update = player.next() => {
                if update?.is_none() {
                    anyhow::bail!("the server closed the game after {} snapshots", player.view().snapshots);
                }
            }
            tick = async { clock.as_mut().expect("guarded").await }, if clock.is_some() => {
                clock = None;
                if let (Ok(tick), Some(seen)) = (tick, player.view().newest_tick()) {
                    report.lags.push(tick.saturating_sub(seen));
                }
            }
            _ = steering.tick() => {
                let (x, y) = heading(&player, &mut rng);
                if player.steer(x, y).is_ok() {
                    report.inputs += 1;
                }
            }
            _ = sampling.tick(), if clock.is_none() => clock = Some(Box::pin(player.clock())),
        }
    }
    report.view = player.view().clone();
    report.rtt = player.rtt();
    player.leave();
    Ok(report)
}

/// Where a bot steers: toward the nearest coin, with a little wobble;
/// anywhere at random when it has no snapshot yet.
pub fn heading(player: &Player, rng: &mut SplitMix) -> (f32, f32) {
    let wobble = (rng.unit() - 0.5) * 0.6;
    let view = player.view();
    let (Some(me), Some(snapshot)) = (view.player(player.id()), view.newest.as_ref()) else {
        return (rng.unit() * 2.0 - 1.0, rng.unit() * 2.0 - 1.0);
    };
    let nearest = snapshot.coins.iter().min_by(|a, b| {
        let da = (a.x - me.x).hypot(a.y - me.y);
        let db = (b.x - me.x).hypot(b.y - me.y);
        da.total_cmp(&db)
    });
    match nearest {
        Some(coin) => (coin.x - me.x + wobble, coin.y - me.y - wobble),
        None => (wobble, -wobble),
    }
}
