//! `chat bots`: a crowd of sessions chatting in rooms for a while, measured.
//!
//! Every bot joins first (so each line has a known audience: the other
//! bots of its room), then says a line at a steady pace, stamped with when
//! it was sent; each bot's listener counts the lines it gets and how long
//! they took. After the last line the bots wait for what is still on its
//! way (up to a grace period), leave, and the run is summed up in one line.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use protowright::Transport;
use protowright::net::Net;
use tokio::time::{Instant, MissedTickBehavior};

use crate::session::{ClientOptions, ConnectError, Session, Update, Updates};

/// How a run of bots goes. Defaults: 10 bots for 5 s, one room per 8 bots,
/// a line every 200 ms from each, 5 s of grace for late deliveries.
#[derive(Debug, Clone)]
pub struct BotsOptions {
    /// How many bots.
    pub count: usize,
    /// How long they chat.
    pub duration: Duration,
    /// Rooms they spread over; 0 picks one room per 8 bots.
    pub rooms: usize,
    /// The time between two lines of one bot.
    pub interval: Duration,
    /// How long to wait after the last line for deliveries on their way.
    pub grace: Duration,
    /// Each bot's session settings.
    pub client: ClientOptions,
}

impl Default for BotsOptions {
    fn default() -> Self {
        Self {
            count: 10,
            duration: Duration::from_secs(5),
            rooms: 0,
            interval: Duration::from_millis(200),
            grace: Duration::from_secs(5),
            client: ClientOptions::default(),
        }
    }
}

/// What a run of bots did. Its `Display` is the one summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The transport they talked over.
    pub transport: Option<Transport>,
    /// How many bots.
    pub bots: usize,
    /// How many rooms.
    pub rooms: usize,
    /// How long they chatted.
    pub duration: Duration,
    /// Lines the server accepted.
    pub sent: u64,
    /// Deliveries those lines owed: each to the other bots of its room.
    pub expected: u64,
    /// Lines the bots received.
    pub received: u64,
    /// Events the server dropped for bots that read too slowly.
    pub missed: u64,
    /// Calls that failed, lost connections and failed rejoins.
    pub errors: u64,
    /// The median time from a line's sending to its delivery.
    pub p50: Option<Duration>,
    /// The 99th percentile of the same.
    pub p99: Option<Duration>,
    /// The slowest delivery.
    pub max: Option<Duration>,
}

impl Summary {
    /// Whether every owed line arrived, none was dropped and nothing failed.
    pub fn is_clean(&self) -> bool {
        self.received >= self.expected && self.missed == 0 && self.errors == 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = self.transport.map_or("?".to_owned(), |t| t.to_string());
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_owned(), |d| {
                format!("{:.2}ms", d.as_secs_f64() * 1e3)
            })
        };
        write!(
            f,
            "{} bots in {} rooms over {transport} for {:.1}s: sent {} lines, delivered {} of {}, \
             missed {}, latency p50 {} p99 {} max {}, errors {}",
            self.bots,
            self.rooms,
            self.duration.as_secs_f64(),
            self.sent,
            self.received,
            self.expected,
            self.missed,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.errors
        )
    }
}

/// The counts every bot adds to.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    expected: u64,
    received: u64,
    missed: u64,
    errors: u64,
    latencies: Vec<Duration>,
}

impl Tally {
    /// Whether every owed line has arrived.
    fn is_complete(&self) -> bool {
        self.received >= self.expected
    }
}

type SharedTally = Arc<Mutex<Tally>>;

fn lock(tally: &SharedTally) -> MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `options.count` bots against `server` over `net` and `transport`
/// (see the module docs). Fails when a bot cannot connect or join.
pub async fn bots<N: Net>(
    net: N,
    transport: Transport,
    server: SocketAddr,
    options: BotsOptions,
) -> Result<Summary, ConnectError> {
    let count = options.count.max(1);
    let rooms = match options.rooms {
        0 => count.div_ceil(8),
        rooms => rooms.min(count),
    };
    // Names of this run's own, so runs side by side do not collide.
    let run = net.random_u64().map_err(|error| {
        ConnectError::Connect(protowright::Error::Connect {
            addr: server,
            transport,
            reason: format!("no randomness for the bots' names: {error}"),
            unreachable: false,
        })
    })? & 0xffff;
    let tally = SharedTally::default();
    let start = Instant::now();
    let mut sessions = Vec::with_capacity(count);
    for index in 0..count {
        let nick = format!("bot{index}-{run:04x}");
        let room = format!("bots{}-{run:04x}", index % rooms);
        let client = options.client.clone();
        match Session::connect(net.clone(), transport, server, &nick, &room, client).await {
            Ok((session, updates, _room)) => {
                tokio::spawn(listen(updates, Arc::clone(&tally), start));
                sessions.push(session);
            }
            Err(error) => {
                sessions.iter().for_each(Session::close);
                return Err(error);
            }
        }
    }
    let audience =
        |index: usize| (count / rooms + usize::from(index % rooms < count % rooms) - 1) as u64;
    let stop = Instant::now() + options.duration;
    let speakers: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(index, session)| {
            let pace = Pace {
                offset: options.interval.mul_f64(index as f64 / count as f64),
                interval: options.interval,
                stop,
                start,
            };
            tokio::spawn(speak(
                session.clone(),
                pace,
                audience(index),
                Arc::clone(&tally),
            ))
        })
        .collect();
    for speaker in speakers {
        let _ = speaker.await;
    }
    let grace_end = Instant::now() + options.grace;
    while Instant::now() < grace_end && !lock(&tally).is_complete() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for session in &sessions {
        session.quit().await;
    }
    let mut tally = lock(&tally);
    tally.latencies.sort_unstable();
    let percentile = |p: usize| {
        let len = tally.latencies.len();
        (len > 0).then(|| tally.latencies[(len * p / 100).min(len - 1)])
    };
    Ok(Summary {
        transport: Some(transport),
        bots: count,
        rooms,
        duration: options.duration,
        sent: tally.sent,
        expected: tally.expected,
        received: tally.received,
        missed: tally.missed,
        errors: tally.errors,
        p50: percentile(50),
        p99: percentile(99),
        max: tally.latencies.last().copied(),
    })
}

/// When one bot speaks.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Its delay before the first line, spreading the bots over an interval.
    offset: Duration,
    interval: Duration,
    stop: Instant,
    /// The run's start, which the stamps count from.
    start: Instant,
}

/// Says a stamped line every interval until the stop.
async fn speak(session: Session, pace: Pace, audience: u64, tally: SharedTally) {
    tokio::time::sleep(pace.offset).await;
    let mut ticker = tokio::time::interval(pace.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for n in 0u64.. {
        ticker.tick().await;
        if Instant::now() >= pace.stop {
            break;
        }
        let stamp = pace.start.elapsed().as_micros();
        let said = session.say(&format!("line {n} sent at {stamp}us")).await;
        let mut tally = lock(&tally);
        match said {
            Ok(_) => {
                tally.sent += 1;
                tally.expected += audience;
            }
            Err(status) => {
                tracing::debug!(%status, "a bot's line failed");
                tally.errors += 1;
            }
        }
    }
}

/// Counts one bot's deliveries and their latency.
async fn listen(mut updates: Updates, tally: SharedTally, start: Instant) {
    while let Some(update) = updates.next().await {
        let mut tally = lock(&tally);
        match update {
            Update::Said(said) => {
                if let Some(stamp) = stamp(&said.text) {
                    tally.received += 1;
                    let latency = start.elapsed().saturating_sub(stamp);
                    tally.latencies.push(latency);
                }
            }
            Update::Missed(count) => tally.missed += count,
            Update::Disconnected { .. } | Update::RejoinFailed(_) => tally.errors += 1,
            _ => {}
        }
    }
}

/// When a bot's line was sent, from its text: `line N sent at MICROSus`.
fn stamp(text: &str) -> Option<Duration> {
    let micros = text.rsplit(' ').next()?.strip_suffix("us")?;
    micros.parse().ok().map(Duration::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bots_line_carries_its_sending_time() {
        assert_eq!(
            stamp("line 3 sent at 1500us"),
            Some(Duration::from_micros(1500))
        );
        assert_eq!(stamp("hello there"), None);
    }

    #[test]
    fn the_summary_is_one_line_with_the_counts_and_latencies() {
        let summary = Summary {
            transport: Some(Transport::Udp),
            bots: 4,
            rooms: 1,
            duration: Duration::from_secs(2),
            sent: 40,
            expected: 120,
            received: 120,
            p50: Some(Duration::from_micros(410)),
            p99: Some(Duration::from_micros(2300)),
            max: Some(Duration::from_micros(3100)),
            ..Summary::default()
        };
        assert_eq!(
            summary.to_string(),
            "4 bots in 1 rooms over udp for 2.0s: sent 40 lines, delivered 120 of 120, \
             missed 0, latency p50 0.41ms p99 2.30ms max 3.10ms, errors 0"
        );
        assert!(summary.is_clean());
    }
}
