//! `file-share`: share a directory, list it, download from it.
//!
//! ```text
//! file-share serve --dir DIR [--listen ADDR] [--transport tcp|udp]
//! file-share list  --server ADDR [--transport tcp|udp]
//! file-share get   --server ADDR --out DIR NAME... [--transport tcp|udp] [--retry-for 60s]
//! ```
//!
//! Exit codes: 0 success (for `get`: every file verified); 1 a file did
//! not arrive or a call failed; 2 a wrong command line; 3 the server could
//! not be reached (or, for `serve`, could not start).

mod bars;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use file_share::fetch::human_bytes;
use file_share::pb::FileShareClient;
use file_share::{GetConfig, ShareConfig, digest};
use protowright::net::Tokio;
use protowright::{Client, ClientConfig, Transport};

/// The port the commands default to, on loopback.
const DEFAULT_ADDR: &str = "127.0.0.1:7500";

/// Share files over TCP or reliable UDP: chunked, SHA-256-verified,
/// resumable downloads.
#[derive(Debug, Parser)]
#[command(name = "file-share", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Share the files of a directory (and its subdirectories) until Ctrl-C.
    Serve {
        /// The directory to share.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The address to listen on.
        #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
        listen: SocketAddr,
        /// The transport to serve.
        #[arg(long, value_enum, default_value_t = Proto::Tcp)]
        transport: Proto,
        /// Bytes per chunk (4096 to 524288).
        #[arg(long, value_name = "BYTES", default_value_t = ShareConfig::default().chunk_size)]
        chunk_size: u32,
    },
    /// List the shared files: size, SHA-256 and name.
    List {
        /// The server's address.
        #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
        server: SocketAddr,
        /// The transport the server speaks.
        #[arg(long, value_enum, default_value_t = Proto::Tcp)]
        transport: Proto,
    },
    /// Download files, verified chunk by chunk; resumes partial downloads.
    Get {
        /// The server's address.
        #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
        server: SocketAddr,
        /// The directory to download into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The files to download, as the listing names them.
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
        /// The transport the server speaks.
        #[arg(long, value_enum, default_value_t = Proto::Tcp)]
        transport: Proto,
        /// How long to keep retrying a lost server without progress
        /// (e.g. 500ms, 60s, 5m).
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
        retry_for: Duration,
        /// Files downloading at once.
        #[arg(long, value_name = "N", default_value_t = GetConfig::default().parallel)]
        parallel: usize,
        /// Chunk calls in flight, across all files.
        #[arg(long, value_name = "N", default_value_t = GetConfig::default().window)]
        window: usize,
    },
}

/// The transports, as the command line names them.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Proto {
    /// TCP.
    Tcp,
    /// protowright's reliable UDP.
    Udp,
}

impl From<Proto> for Transport {
    fn from(proto: Proto) -> Self {
        match proto {
            Proto::Tcp => Self::Tcp,
            Proto::Udp => Self::Udp,
        }
    }
}

/// `500ms`, `60s`, `5m`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: try 500ms, 60s or 5m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        _ => Err(format!("`{unit}` is not a unit of time: use ms, s, m or h")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve {
            dir,
            listen,
            transport,
            chunk_size,
        } => serve(dir, listen, transport.into(), chunk_size).await,
        Command::List { server, transport } => list(server, transport.into()).await,
        Command::Get {
            server,
            out,
            names,
            transport,
            retry_for,
            parallel,
            window,
        } => {
            let config = GetConfig {
                retry_for,
                parallel,
                window,
                ..GetConfig::default()
            };
            get(server, transport.into(), out, names, config).await
        }
    }
}

async fn serve(
    dir: PathBuf,
    listen: SocketAddr,
    transport: Transport,
    chunk_size: u32,
) -> ExitCode {
    let config = ShareConfig {
        chunk_size,
        ..ShareConfig::default()
    };
    let running = match file_share::serve(Tokio, transport, listen, &dir, config).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(3);
        }
    };
    println!(
        "sharing {} on {transport} {} ({} KiB chunks); Ctrl-C to stop",
        running.root.display(),
        running.addr,
        chunk_size / 1024
    );
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("error: cannot wait for Ctrl-C: {error}");
    }
    running.handle.shutdown().await;
    let stats = running.stats.snapshot();
    println!(
        "stopped: served {} chunks ({}); manifest pages: {}, listing pages: {}, calls refused: {}",
        stats.chunks,
        human_bytes(stats.bytes),
        stats.manifests,
        stats.lists,
        stats.refused
    );
    ExitCode::SUCCESS
}

async fn list(server: SocketAddr, transport: Transport) -> ExitCode {
    let client = match Client::connect(Tokio, transport, server, ClientConfig::default()).await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(3);
        }
    };
    let listed = file_share::list(&FileShareClient::new(client.clone())).await;
    file_share::fetch::close(&client).await;
    let files = match listed {
        Ok(files) => files,
        Err(status) => {
            eprintln!("error: listing failed: {status}");
            return ExitCode::from(1);
        }
    };
    println!("{:>12}  {:<64}  NAME", "SIZE", "SHA-256");
    for file in &files {
        println!(
            "{:>12}  {:<64}  {}",
            file.size,
            digest::hex(&file.sha256),
            file.name
        );
    }
    let total: u64 = files.iter().map(|file| file.size).sum();
    println!("{} files, {}", files.len(), human_bytes(total));
    ExitCode::SUCCESS
}

async fn get(
    server: SocketAddr,
    transport: Transport,
    out: PathBuf,
    names: Vec<String>,
    config: GetConfig,
) -> ExitCode {
    if let Err(error) = std::fs::create_dir_all(&out) {
        eprintln!("error: cannot create {}: {error}", out.display());
        return ExitCode::from(1);
    }
    let bars = Arc::new(bars::Bars::new(&names));
    let outcome =
        file_share::get(Tokio, transport, server, &names, &out, config, bars.clone()).await;
    let summary = match outcome {
        Ok(summary) => summary,
        Err(error) => {
            bars.clear();
            eprintln!("error: {error}");
            return ExitCode::from(3);
        }
    };
    for file in &summary.files {
        match &file.result {
            Ok(fetched) => println!(
                "verified  {}  {}",
                digest::hex(&fetched.sha256),
                out.join(&file.name).display()
            ),
            Err(error) => println!("FAILED    {}: {error}", file.name),
        }
    }
    println!("{summary}");
    if summary.all_verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
