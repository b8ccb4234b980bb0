//! `chat`: chat rooms on protowright, from the command line.
//!
//! Exit codes: 0 success; 1 a failure (cannot bind, cannot reach the
//! server, a bots run that lost lines or had errors); 2 a wrong command
//! line; 3 the server refused (a bad or taken nickname, a bad room name).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chat::{BotsOptions, ClientOptions, ConnectError, Limits, Session, Update, pb};
use clap::{Args, Parser, Subcommand};
use protowright::net::Tokio;
use protowright::{ServerConfig, Transport};
use tokio::io::AsyncBufReadExt as _;

/// Chat rooms over TCP or reliable UDP, on protowright.
///
/// Start a server, then join it from other terminals:
///
///   chat server
///   chat client --nick ada
///   chat client --nick bob
///   chat bots --count 20 --seconds 5
#[derive(Debug, Parser)]
#[command(name = "chat", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a chat server until Ctrl-C.
    Server(ServerArgs),
    /// Join a room and chat: lines from stdin, the room on stdout.
    ///
    /// A line is said to the room. Commands: /list (rooms and who is in
    /// them), /join ROOM (move to another room), /leave (leave the room),
    /// /quit (leave and exit), /help. End of input leaves and exits too.
    Client(ClientArgs),
    /// Run N bots that chat in rooms for S seconds, then print one summary line.
    ///
    /// Exits 0 when every line reached every bot it was meant for, 1 otherwise.
    Bots(BotsArgs),
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = chat::DEFAULT_ADDR)]
    listen: SocketAddr,
    /// The transport: tcp, or protowright's reliable udp.
    #[arg(long, value_name = "tcp|udp", default_value = "tcp", value_parser = parse_transport)]
    transport: Transport,
    /// Events queued on the server per member; when a member reads too
    /// slowly the oldest is dropped and the member told how many it missed.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    queue: u32,
    /// Lines of history a room keeps for members who join later.
    #[arg(long, value_name = "N", default_value_t = 50)]
    history: u32,
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// The server's address.
    #[arg(long, value_name = "ADDR", default_value = chat::DEFAULT_ADDR)]
    server: SocketAddr,
    /// Your nickname: 1 to 16 ASCII letters, digits, `-` or `_`.
    #[arg(long, value_name = "NAME")]
    nick: String,
    /// The room to join.
    #[arg(long, value_name = "ROOM", default_value = "lobby")]
    room: String,
    /// The transport: tcp, or protowright's reliable udp.
    #[arg(long, value_name = "tcp|udp", default_value = "tcp", value_parser = parse_transport)]
    transport: Transport,
}

#[derive(Debug, Args)]
struct BotsArgs {
    /// The server's address.
    #[arg(long, value_name = "ADDR", default_value = chat::DEFAULT_ADDR)]
    server: SocketAddr,
    /// How many bots.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    count: u32,
    /// How long they chat, in seconds (fractions allowed).
    #[arg(long, value_name = "S", default_value = "5", value_parser = parse_seconds)]
    seconds: Duration,
    /// The transport: tcp, or protowright's reliable udp.
    #[arg(long, value_name = "tcp|udp", default_value = "tcp", value_parser = parse_transport)]
    transport: Transport,
    /// Rooms the bots spread over (default: one per 8 bots).
    #[arg(long, value_name = "N")]
    rooms: Option<u32>,
    /// Milliseconds between two lines of one bot.
    #[arg(long, value_name = "MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    interval_ms: u64,
}

fn parse_transport(name: &str) -> Result<Transport, protowright::UnknownTransport> {
    name.parse()
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{text} s is not between 0 and a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The server refused: a bad or taken nickname, a bad room name.
const REFUSED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chat: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server(args).await,
            Command::Client(args) => client(args).await,
            Command::Bots(args) => bots(args).await,
        }
    });
    // Do not wait for tasks still running (a blocked stdin read, say).
    runtime.shutdown_background();
    outcome.unwrap_or_else(|error| {
        eprintln!("chat: {error:#}");
        ExitCode::FAILURE
    })
}

async fn server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        member_queue: args.queue as usize,
        history: args.history as usize,
        ..Limits::default()
    };
    let running = chat::serve(
        Tokio,
        args.transport,
        args.listen,
        ServerConfig::default(),
        limits,
    )
    .await
    .context("cannot start the server")?;
    println!(
        "chat server listening on {} over {} (queue {} events per member, history {} lines); Ctrl-C stops it",
        running.addr(),
        running.transport(),
        limits.member_queue,
        limits.history
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!("shutting down");
    running.shutdown().await;
    let stats = running.stats();
    println!(
        "served {} lines; {} events dropped for slow readers",
        stats.lines, stats.dropped
    );
    Ok(ExitCode::SUCCESS)
}

async fn client(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let ClientArgs {
        server,
        nick,
        room,
        transport,
    } = args;
    let connected = Session::connect(
        Tokio,
        transport,
        server,
        &nick,
        &room,
        ClientOptions::default(),
    )
    .await;
    let (session, mut updates, reply) = match connected {
        Ok(connected) => connected,
        Err(error @ ConnectError::Refused(_)) => {
            eprintln!("chat: {error}");
            return Ok(ExitCode::from(REFUSED));
        }
        Err(error) => return Err(error.into()),
    };
    println!("* connected to {server} over {transport} as {nick}; /help lists the commands");
    print_room(&nick, &reply);
    let me = nick.clone();
    let printer = tokio::spawn(async move {
        while let Some(update) = updates.next().await {
            print_update(&me, update);
        }
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.context("cannot read stdin")? {
        if !run_line(&session, line.trim()).await {
            break;
        }
    }
    session.quit().await;
    let _ = printer.await;
    println!("* bye");
    Ok(ExitCode::SUCCESS)
}

/// Carries out one line of input; `false` to quit.
async fn run_line(session: &Session, line: &str) -> bool {
    let (command, argument) = line.split_once(' ').unwrap_or((line, ""));
    let argument = argument.trim();
    match command {
        "" => {}
        "/quit" | "/exit" => return false,
        "/help" => {
            println!("* type a line to say it; /list, /join ROOM, /leave, /quit (or end of input)")
        }
        "/list" => match session.list().await {
            Ok(rooms) if rooms.is_empty() => println!("* no rooms"),
            Ok(rooms) => {
                for room in rooms {
                    println!("* #{}: {}", room.name, room.members.join(", "));
                }
            }
            Err(status) => eprintln!("! cannot list the rooms: {status}"),
        },
        "/join" if argument.is_empty() => eprintln!("! /join needs a room: /join ROOM"),
        "/join" => match session.join(argument).await {
            Ok(reply) => print_room(session.nick(), &reply),
            Err(status) => eprintln!("! cannot join #{argument}: {status}"),
        },
        "/leave" => match session.leave().await {
            Ok(room) => println!("* you left #{room}"),
            Err(status) => eprintln!("! cannot leave: {status}"),
        },
        unknown if unknown.starts_with('/') => {
            eprintln!("! unknown command {unknown}; /help lists them");
        }
        _ => match session.say(line).await {
            Ok(_) => {
                let room = session.room().unwrap_or_default();
                println!("[#{room}] {}: {line}", session.nick());
            }
            Err(status) => eprintln!("! not said: {status}"),
        },
    }
    true
}

fn print_room(me: &str, reply: &pb::JoinReply) {
    let others: Vec<&str> = reply
        .members
        .iter()
        .map(String::as_str)
        .filter(|nick| *nick != me)
        .collect();
    if others.is_empty() {
        println!("* you are in #{}, alone", reply.room);
    } else {
        println!("* you are in #{} with {}", reply.room, others.join(", "));
    }
    if !reply.history.is_empty() {
        println!("* recent lines:");
        for said in &reply.history {
            print_said(said);
        }
    }
}

fn print_said(said: &pb::Said) {
    println!("[#{}] {}: {}", said.room, said.nick, said.text);
}

fn print_update(me: &str, update: Update) {
    match update {
        Update::Said(said) => print_said(&said),
        Update::Joined(joined) => println!("* {} joined #{}", joined.nick, joined.room),
        Update::Left(left) if left.reason == "left" => {
            println!("* {} left #{}", left.nick, left.room);
        }
        Update::Left(left) => println!("* {} left #{} ({})", left.nick, left.room, left.reason),
        Update::Missed(count) => {
            println!("* the server dropped {count} events for you: this client fell behind");
        }
        Update::Disconnected { reason } => println!("* connection lost ({reason}); reconnecting"),
        Update::Rejoined(reply) => {
            println!("* reconnected");
            print_room(me, &reply);
        }
        Update::Reconnected => println!("* reconnected"),
        Update::RejoinFailed(status) => {
            eprintln!("! reconnected, but could not rejoin: {status}; /join ROOM to try again");
        }
    }
}

async fn bots(args: BotsArgs) -> anyhow::Result<ExitCode> {
    let options = BotsOptions {
        count: args.count as usize,
        duration: args.seconds,
        rooms: args.rooms.unwrap_or(0) as usize,
        interval: Duration::from_millis(args.interval_ms),
        ..BotsOptions::default()
    };
    match chat::bots(Tokio, args.transport, args.server, options).await {
        Ok(summary) => {
            println!("{summary}");
            Ok(if summary.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(error @ ConnectError::Refused(_)) => {
            eprintln!("chat: {error}");
            Ok(ExitCode::from(REFUSED))
        }
        Err(error) => Err(error.into()),
    }
}
