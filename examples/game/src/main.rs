//! `game`: the real-time game example's command line — a server, and bots
//! that play against it and print one summary line.
//!
//! Exit codes: 0 success; 1 failure (no server answered, a refusal, a bot
//! whose view broke a guarantee); 2 a wrong command line.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use game::pb::event;
use game::{BotSettings, DEFAULT_PORT, Observer, Settings};
use protowright::net::Tokio;

/// A real-time game on protowright: an authoritative server ticking at a
/// fixed rate, and bots that play it.
///
/// It runs on protowright's reliable UDP only, as real-time games do:
/// snapshots of the world are unreliable-sequenced (a late one is useless,
/// so a lost one is never resent and an old one never overtakes a newer
/// one), while join, leave and score events are reliable and ordered, on a
/// channel of their own. TCP would resend every lost snapshot and hold all
/// the newer ones behind it.
#[derive(Debug, Parser)]
#[command(name = "game", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the authoritative game server over reliable UDP until Ctrl-C.
    Server {
        /// The address to listen on.
        #[arg(long, value_name = "ADDR", default_value_t = default_addr())]
        listen: SocketAddr,
        /// World steps (and snapshots sent to every player) per second, 1 to 240.
        #[arg(long, value_name = "HZ", default_value_t = 30)]
        tick_hz: u32,
        /// Players seated at once; later joins are refused as "full".
        #[arg(long, value_name = "N", default_value_t = 16)]
        max_players: usize,
        /// The world's seed (coin and spawn positions); random if not given.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Runs N bots against a server over reliable UDP for S seconds, then
    /// prints one line: round trip, snapshot loss, view lag, events.
    Bots {
        /// The game server's address.
        #[arg(long, value_name = "ADDR", default_value_t = default_addr())]
        server: SocketAddr,
        /// How many bots play at once.
        #[arg(long, value_name = "N", default_value_t = 4)]
        count: usize,
        /// How long they play, in seconds.
        #[arg(long, value_name = "S", default_value_t = 10.0)]
        seconds: f64,
    },
}

fn default_addr() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, DEFAULT_PORT).into()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::anyhow!("cannot start the runtime: {error}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Server {
                listen,
                tick_hz,
                max_players,
                seed,
            } => {
                let settings = Settings {
                    tick_hz,
                    max_players,
                    seed,
                    ..Settings::default()
                };
                server(listen, settings).await
            }
            Command::Bots {
                server,
                count,
                seconds,
            } => bots(server, count, seconds).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}

/// Prints who joins, leaves and scores.
struct Announcer;

impl Observer for Announcer {
    fn on_change(&self, tick: u64, change: &event::Kind) {
        match change {
            event::Kind::Joined(joined) => {
                println!(
                    "tick {tick}: player {} ({}) joined",
                    joined.player, joined.name
                );
            }
            event::Kind::Left(left) => {
                println!("tick {tick}: player {} {}", left.player, left.reason);
            }
            event::Kind::Scored(_) => {}
        }
    }
}

async fn server(listen: SocketAddr, settings: Settings) -> anyhow::Result<()> {
    let game = game::server::serve_observed(Tokio, listen, settings.clone(), Announcer).await?;
    println!(
        "game server listening on {} over reliable UDP: {} ticks/s, up to {} players (Ctrl-C stops)",
        game.local_addr(),
        settings.tick_hz,
        settings.max_players
    );
    tokio::signal::ctrl_c().await?;
    println!("shutting down after tick {}", game.tick());
    game.shutdown().await;
    Ok(())
}

async fn bots(server: SocketAddr, count: usize, seconds: f64) -> anyhow::Result<()> {
    let duration = Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--seconds must be a positive number, not {seconds}"))?;
    anyhow::ensure!(count > 0, "--count must be at least 1");
    let settings = BotSettings {
        count,
        duration,
        ..BotSettings::default()
    };
    let summary = game::bots(Tokio, server, settings).await?;
    println!("{summary}");
    anyhow::ensure!(
        summary.is_sound(),
        "a bot saw a broken guarantee (a stale snapshot, or an event lost or repeated)"
    );
    Ok(())
}
