//! `cargo xtask bench`: protowright side by side with its peers, in one run.
//!
//! Every contender is a server process and a client process
//! (`target/release/contender`), each on a single-threaded runtime, pinned
//! to different cores with `taskset` when it is available. The connection
//! is set up before the clock starts. Each figure is the median of several
//! runs, interleaved across contenders so that drifting machine load hits
//! all of them alike; the minimum and maximum stand beside it. The harness
//! ends only the processes it started, and every process stops by itself.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::netem;

/// A contender: whether it is ours, a peer, or the physical limit; the
/// transport family it is compared within; the workloads it runs; and
/// those of them where its figure is shown but measures something else
/// than its row (so it is no one's "best peer" there).
struct Contender {
    name: &'static str,
    kind: Kind,
    family: Family,
    workloads: &'static [&'static str],
    shown_only: &'static [&'static str],
}

/// Contenders are compared with the peers and the limit of their family.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Tcp,
    Udp,
    Simulation,
}

const ALL: &[&str] = &["msgs64", "rtt64", "bulk", "conns10k"];
/// The loss rows the kernel's TCP joins (not the relay's: it relays UDP).
const TCP_LOSS: &[&str] = &[
    "msgs64",
    "rtt64",
    "bulk",
    "conns10k",
    "bulk-loss0",
    "bulk-loss1",
    "bulk-loss5",
];
const UDP_ALL: &[&str] = &[
    "msgs64",
    "rtt64",
    "bulk",
    "conns10k",
    "bulk-loss0",
    "bulk-loss1",
    "bulk-loss5",
    "rtt64-loss5",
    "bulk-rtt20-loss1",
];
const UDP_NO_CONNS: &[&str] = &[
    "msgs64",
    "rtt64",
    "bulk",
    "bulk-loss0",
    "bulk-loss1",
    "bulk-loss5",
    "rtt64-loss5",
    "bulk-rtt20-loss1",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    Peer,
    Limit,
}

const CONTENDERS: &[Contender] = &[
    Contender {
        name: "raw-tcp",
        kind: Kind::Limit,
        family: Family::Tcp,
        workloads: TCP_LOSS,
        shown_only: &[],
    },
    Contender {
        name: "tokio-codec",
        kind: Kind::Peer,
        family: Family::Tcp,
        workloads: ALL,
        shown_only: &[],
    },
    Contender {
        name: "protowright-tcp",
        kind: Kind::Ours,
        family: Family::Tcp,
        workloads: ALL,
        shown_only: &[],
    },
    Contender {
        name: "tonic",
        kind: Kind::Peer,
        family: Family::Tcp,
        workloads: &["msgs64", "rtt64", "bulk"],
        shown_only: &[],
    },
    Contender {
        name: "raw-udp",
        kind: Kind::Limit,
        family: Family::Udp,
        workloads: &["msgs64", "rtt64", "msgs64-unreliable"],
        shown_only: &[],
    },
    // quinn's msgs64 is unframed bytes / 64 on one stream: its bulk rate
    // in 64-byte writes, not a message rate. quinn-framed is the peer there.
    Contender {
        name: "quinn",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: UDP_ALL,
        shown_only: &["msgs64"],
    },
    Contender {
        name: "quinn-bbr",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: UDP_ALL,
        shown_only: &["msgs64"],
    },
    // Length-prefixed prost messages on one stream, decoded one by one.
    Contender {
        name: "quinn-framed",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: &["msgs64", "rtt64"],
        shown_only: &[],
    },
    // One prost message per QUIC DATAGRAM frame.
    Contender {
        name: "quinn-datagram",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: &["msgs64-unreliable"],
        shown_only: &[],
    },
    // quinn-framed's messages and quinn's bulk, MTU discovery up to 16 KiB.
    Contender {
        name: "quinn-jumbo",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: &[
            "msgs64",
            "rtt64",
            "bulk",
            "bulk-loss0",
            "bulk-loss1",
            "bulk-loss5",
            "bulk-rtt20-loss1",
        ],
        shown_only: &[],
    },
    Contender {
        name: "kcp",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: UDP_NO_CONNS,
        shown_only: &[],
    },
    Contender {
        name: "protowright-udp",
        kind: Kind::Ours,
        family: Family::Udp,
        workloads: &[
            "msgs64",
            "msgs64-unreliable",
            "rtt64",
            "bulk",
            "conns10k",
            "bulk-loss0",
            "bulk-loss1",
            "bulk-loss5",
            "rtt64-loss5",
            "bulk-rtt20-loss1",
        ],
        shown_only: &[],
    },
    // The same without encryption (the debugging flag): the cost of
    // encryption per row is protowright-udp's figure against this one.
    Contender {
        name: "protowright-udp-plaintext",
        kind: Kind::Ours,
        family: Family::Udp,
        workloads: &[
            "msgs64",
            "msgs64-unreliable",
            "rtt64",
            "bulk",
            "bulk-loss0",
            "bulk-loss5",
            "rtt64-loss5",
        ],
        shown_only: &[],
    },
    Contender {
        name: "protowright-sim",
        kind: Kind::Ours,
        family: Family::Simulation,
        workloads: &["sim-seeds"],
        shown_only: &[],
    },
];

/// A workload, the metrics it reports (the JSON keys the contenders
/// print), how much of it to run, full and `--quick`, what the contenders
/// run (`base`), and on which network.
struct Workload {
    name: &'static str,
    metrics: &'static [(&'static str, &'static str, Better)],
    amount: f64,
    quick: f64,
    base: &'static str,
    network: Network,
}

/// Where a workload runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Network {
    /// Plain loopback.
    Loopback,
    /// A namespace whose loopback (MTU 1500) drops this percentage.
    Lossy(u32),
    /// Through the relay: this delay each way (ms), this loss per mille.
    Relay { delay_ms: u64, loss_per_mille: u32 },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

const WORKLOADS: &[Workload] = &[
    // Seconds of sending.
    Workload {
        name: "msgs64",
        metrics: &[("msgs_per_s", "msg/s", Better::Higher)],
        amount: 3.0,
        quick: 1.0,
        base: "msgs64",
        network: Network::Loopback,
    },
    // Seconds of sending unreliably; the share is of the messages sent.
    Workload {
        name: "msgs64-unreliable",
        metrics: &[
            ("msgs_per_s", "msg/s", Better::Higher),
            ("received_share", "of sent", Better::Higher),
        ],
        amount: 3.0,
        quick: 1.0,
        base: "msgs64-unreliable",
        network: Network::Loopback,
    },
    // Seconds of round trips.
    Workload {
        name: "rtt64",
        metrics: &[
            ("p50_us", "µs", Better::Lower),
            ("p99_us", "µs", Better::Lower),
        ],
        amount: 3.0,
        quick: 1.0,
        base: "rtt64",
        network: Network::Loopback,
    },
    // MiB transferred.
    Workload {
        name: "bulk",
        metrics: &[("mb_per_s", "MB/s", Better::Higher)],
        amount: 256.0,
        quick: 64.0,
        base: "bulk",
        network: Network::Loopback,
    },
    // Connections held.
    Workload {
        name: "conns10k",
        metrics: &[
            ("bytes_per_conn", "B", Better::Lower),
            ("connect_s", "s", Better::Lower),
        ],
        amount: 10_000.0,
        quick: 1_000.0,
        base: "conns10k",
        network: Network::Loopback,
    },
    // Seconds of simulation.
    Workload {
        name: "sim-seeds",
        metrics: &[("seeds_per_s", "seeds/s", Better::Higher)],
        amount: 10.0,
        quick: 2.0,
        base: "sim-seeds",
        network: Network::Loopback,
    },
    // The namespace's own 0% row: loss rows compare with it.
    Workload {
        name: "bulk-loss0",
        metrics: &[("mb_per_s", "MB/s", Better::Higher)],
        amount: 64.0,
        quick: 16.0,
        base: "bulk",
        network: Network::Lossy(0),
    },
    Workload {
        name: "bulk-loss1",
        metrics: &[("mb_per_s", "MB/s", Better::Higher)],
        amount: 64.0,
        quick: 16.0,
        base: "bulk",
        network: Network::Lossy(1),
    },
    Workload {
        name: "bulk-loss5",
        metrics: &[("mb_per_s", "MB/s", Better::Higher)],
        amount: 32.0,
        quick: 4.0,
        base: "bulk",
        network: Network::Lossy(5),
    },
    Workload {
        name: "rtt64-loss5",
        metrics: &[
            ("p50_us", "µs", Better::Lower),
            ("p99_us", "µs", Better::Lower),
        ],
        amount: 3.0,
        quick: 1.0,
        base: "rtt64",
        network: Network::Lossy(5),
    },
    Workload {
        name: "bulk-rtt20-loss1",
        metrics: &[("mb_per_s", "MB/s", Better::Higher)],
        // Long enough that slow start at 20 ms is a small part of it for
        // the fast contenders (~15 MB/s: ~2 s, of which ramp-up is ~0.1
        // s). quinn with CUBIC is held near the Mathis rate (~0.6 MB/s)
        // and takes ~55 s a run; more would make the row too long.
        amount: 32.0,
        quick: 4.0,
        base: "bulk",
        network: Network::Relay {
            delay_ms: 10,
            loss_per_mille: 10,
        },
    },
];

/// What `cargo xtask bench` was asked for.
#[derive(Debug)]
pub(crate) struct Options {
    quick: bool,
    only: Option<String>,
    /// Figures to leave out, by the same kind of pattern.
    skip: Option<String>,
    json: Option<PathBuf>,
    runs: usize,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            quick: false,
            only: None,
            skip: None,
            json: None,
            runs: 3,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--skip" => {
                    options.skip = Some(args.next().context("--skip takes a PATTERN")?.clone())
                }
                "--only" => {
                    options.only = Some(args.next().context("--only takes a PATTERN")?.clone())
                }
                "--json" => options.json = Some(args.next().context("--json takes a PATH")?.into()),
                "--runs" => {
                    options.runs = args
                        .next()
                        .context("--runs takes a number")?
                        .parse()
                        .context("--runs takes a number")?;
                    if options.runs == 0 {
                        bail!("--runs must be at least 1");
                    }
                }
                other => bail!(
                    "unknown bench option `{other}` (--quick, --only PATTERN, --skip PATTERN, --json PATH, --runs N)"
                ),
            }
        }
        Ok(options)
    }

    fn amount(&self, workload: &Workload) -> f64 {
        if self.quick {
            workload.quick
        } else {
            workload.amount
        }
    }

    fn selects(&self, contender: &Contender, workload: &str) -> bool {
        let matches = |p: &String| {
            contender.name.contains(p.as_str())
                || workload.contains(p.as_str())
                || format!("{}/{workload}", contender.name).contains(p.as_str())
        };
        contender.workloads.contains(&workload)
            && self.only.as_ref().is_none_or(matches)
            && !self.skip.as_ref().is_some_and(matches)
    }
}

/// One figure: every run's value.
struct Figure {
    contender: &'static str,
    /// What the contender said about how it ran (raw-tcp's congestion
    /// control in the loss rows), shown beside its name.
    label: Option<String>,
    /// Shown, but measures something else than its row: no one's peer.
    shown_only: bool,
    kind: Kind,
    family: Family,
    workload: &'static str,
    metric: &'static str,
    unit: &'static str,
    better: Better,
    runs: Vec<f64>,
    /// Why runs failed, one entry per failed run.
    failures: Vec<String>,
}

impl Figure {
    fn sorted(&self) -> Vec<f64> {
        let mut runs = self.runs.clone();
        runs.sort_by(f64::total_cmp);
        runs
    }

    fn median(&self) -> f64 {
        let runs = self.sorted();
        if runs.is_empty() {
            f64::NAN
        } else {
            runs[runs.len() / 2]
        }
    }
}

pub(crate) fn run(root: &Path, options: &Options) -> Result<()> {
    let binary = build(root)?;
    let pinning = Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !pinning {
        eprintln!("note: taskset not found; server and client are not pinned to cores");
    }
    let namespaces = prepare_namespaces(options);
    let tcp_congestion = kernel_congestion();
    let available = |workload: &Workload| match workload.network {
        Network::Lossy(percent) => namespaces.iter().any(|(p, _)| *p == percent),
        _ => true,
    };
    let mut figures: Vec<Figure> = Vec::new();
    for workload in WORKLOADS.iter().filter(|w| available(w)) {
        for contender in CONTENDERS
            .iter()
            .filter(|c| options.selects(c, workload.name))
        {
            for &(metric, unit, better) in workload.metrics {
                figures.push(Figure {
                    contender: contender.name,
                    label: None,
                    shown_only: contender.shown_only.contains(&workload.name),
                    kind: contender.kind,
                    family: contender.family,
                    workload: workload.name,
                    metric,
                    unit,
                    better,
                    runs: Vec::new(),
                    failures: Vec::new(),
                });
            }
        }
    }
    if figures.is_empty() {
        bail!("--only {:?} matches no contender or workload", options.only);
    }
    for round in 1..=options.runs {
        for workload in WORKLOADS.iter().filter(|w| available(w)) {
            for contender in CONTENDERS
                .iter()
                .filter(|c| options.selects(c, workload.name))
            {
                eprintln!(
                    "[run {round}/{}] {} {}",
                    options.runs, contender.name, workload.name
                );
                let namespace = match workload.network {
                    Network::Lossy(percent) => namespaces
                        .iter()
                        .find(|(p, _)| *p == percent)
                        .map(|(_, ns)| ns.name.as_str()),
                    _ => None,
                };
                let place = Place {
                    pinning,
                    namespace,
                    tcp_congestion: namespace.map(|_| tcp_congestion.as_str()),
                    relay: match workload.network {
                        Network::Relay {
                            delay_ms,
                            loss_per_mille,
                        } => Some((
                            Duration::from_millis(delay_ms),
                            f64::from(loss_per_mille) / 1000.0,
                        )),
                        _ => None,
                    },
                };
                let result = match run_once(
                    &binary,
                    contender.name,
                    workload.base,
                    options.amount(workload),
                    &place,
                ) {
                    Ok(result) => result,
                    Err(error) => {
                        // One pair that fails (a contender that cannot
                        // finish a workload here) costs its figure, not
                        // the run: it is shown as failed, with why.
                        let why = format!("{error:#}");
                        let why = why.lines().next().unwrap_or("").to_owned();
                        eprintln!("  failed: {why}");
                        for figure in figures.iter_mut().filter(|f| {
                            f.contender == contender.name && f.workload == workload.name
                        }) {
                            figure.failures.push(why.clone());
                        }
                        continue;
                    }
                };
                for figure in figures
                    .iter_mut()
                    .filter(|f| f.contender == contender.name && f.workload == workload.name)
                {
                    let value = result
                        .get(figure.metric)
                        .and_then(Value::as_f64)
                        .with_context(|| {
                            format!("{} reported no {}", contender.name, figure.metric)
                        })?;
                    figure.runs.push(value);
                    if let Some(label) = result.get("tcp_congestion").and_then(Value::as_str) {
                        figure.label = Some(label.to_owned());
                    }
                }
            }
        }
    }
    println!("{}", table(&figures, options));
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&json_report(&figures))?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn build(root: &Path) -> Result<PathBuf> {
    eprintln!("building the contenders (release)...");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            "protowright-bench",
            "--bin",
            "contender",
        ])
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("building the contenders failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release/contender"))
}

/// Ends a process the harness started, if it is still running.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// The congestion control raw-tcp runs with in the loss rows: BBR where
/// the kernel offers it (it does not take random loss for congestion, as
/// the loss-tolerant UDP contenders do not), CUBIC otherwise, or whatever
/// `PW_BENCH_TCP_CONGESTION` names when the harness is started with it.
fn kernel_congestion() -> String {
    if let Ok(name) = std::env::var("PW_BENCH_TCP_CONGESTION") {
        return name;
    }
    let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .unwrap_or_default();
    if available.split_whitespace().any(|name| name == "bbr") {
        "bbr".to_owned()
    } else {
        "cubic".to_owned()
    }
}

/// Where and how a run's processes start.
struct Place<'a> {
    pinning: bool,
    /// Run both processes in this network namespace.
    namespace: Option<&'a str>,
    /// The TCP congestion control for raw-tcp (`PW_BENCH_TCP_CONGESTION`);
    /// other contenders ignore it.
    tcp_congestion: Option<&'a str>,
    /// Put a relay with this delay each way and loss between them.
    relay: Option<(Duration, f64)>,
}

fn command(binary: &Path, core: &str, place: &Place<'_>) -> Command {
    let mut words: Vec<std::ffi::OsString> = Vec::new();
    if let Some(namespace) = place.namespace {
        words.extend(["ip", "netns", "exec", namespace].map(Into::into));
    }
    if place.pinning {
        words.extend(["taskset", "-c", core].map(Into::into));
    }
    words.push(binary.into());
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]);
    if let Some(algorithm) = place.tcp_congestion {
        command.env("PW_BENCH_TCP_CONGESTION", algorithm);
    }
    command
}

/// Creates the lossy namespaces the selected workloads need. Where that is
/// impossible (not root, no `ip`, no `nft`), says so: those rows are
/// skipped.
fn prepare_namespaces(options: &Options) -> Vec<(u32, netem::Namespace)> {
    let mut namespaces = Vec::new();
    for workload in WORKLOADS {
        let Network::Lossy(percent) = workload.network else {
            continue;
        };
        let wanted = CONTENDERS.iter().any(|c| options.selects(c, workload.name));
        if !wanted || namespaces.iter().any(|(p, _)| *p == percent) {
            continue;
        }
        match netem::Namespace::lossy(percent) {
            Ok(namespace) => namespaces.push((percent, namespace)),
            Err(error) => eprintln!(
                "note: skipping the {percent}% loss rows: no network namespace with nftables here ({error:#}); \
                 run as root with iproute2 and nftables installed"
            ),
        }
    }
    namespaces
}

/// Runs one server and one client; returns what both printed, merged.
fn run_once(
    binary: &Path,
    contender: &str,
    workload: &str,
    amount: f64,
    place: &Place<'_>,
) -> Result<Value> {
    let amount = amount.to_string();
    let limit = Duration::from_secs(120);
    let mut server = Started(
        command(binary, "0", place)
            .args([contender, "server", workload, &amount])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server")?,
    );
    let stdout = server.0.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .context("the server exited before it was ready")??;
    let addr = first
        .strip_prefix("ready ")
        .with_context(|| format!("unexpected server output: {first}"))?
        .to_owned();
    let relay = match place.relay {
        Some((delay, loss)) => Some(netem::Relay::start(addr.parse()?, delay, loss)?),
        None => None,
    };
    let addr = relay.as_ref().map_or(addr, |relay| relay.addr.to_string());
    let mut client = Started(
        command(binary, "1", place)
            .args([contender, "client", workload, &amount, &addr])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the client")?,
    );
    let client_out = wait_output(&mut client, limit).context("client")?;
    // The server prints its result and exits once its client is done.
    let server_out: Vec<String> = lines.map_while(Result::ok).collect();
    let mut merged = serde_json::Map::new();
    for line in client_out
        .lines()
        .chain(server_out.iter().map(String::as_str))
    {
        if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) {
            merged.extend(fields);
        }
    }
    if merged.is_empty() {
        bail!("neither side printed a result");
    }
    // Unreliable rows: the share of the messages sent that arrived.
    if let (Some(received), Some(sent)) = (
        merged.get("messages").and_then(Value::as_f64),
        merged.get("sent_messages").and_then(Value::as_f64),
    ) {
        merged.insert("received_share".into(), json!(received / sent.max(1.0)));
    }
    verify(&merged)?;
    Ok(Value::Object(merged))
}

/// A bulk transfer counts only if the receiver got exactly what was sent.
fn verify(result: &serde_json::Map<String, Value>) -> Result<()> {
    if let (Some(sent), Some(received)) = (result.get("sent_checksum"), result.get("checksum")) {
        if sent != received || result.get("sent_bytes") != result.get("bytes") {
            bail!(
                "the bytes were not verified: sent {} bytes (checksum {sent}), received {} (checksum {received})",
                result.get("sent_bytes").unwrap_or(&Value::Null),
                result.get("bytes").unwrap_or(&Value::Null)
            );
        }
    }
    Ok(())
}

fn wait_output(child: &mut Started, limit: Duration) -> Result<String> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait()? {
            let mut out = String::new();
            if let Some(mut stdout) = child.0.stdout.take() {
                stdout.read_to_string(&mut out)?;
            }
            if !status.success() {
                bail!("exited with {status}");
            }
            return Ok(out);
        }
        if started.elapsed() > limit {
            bail!("did not finish within {limit:?}; stopped");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The best peer's median for a figure's workload and metric.
fn best(figures: &[Figure], of: &Figure, kind: Kind) -> Option<f64> {
    let medians = figures
        .iter()
        .filter(|f| {
            f.kind == kind
                && !f.shown_only
                && f.family == of.family
                && f.workload == of.workload
                && f.metric == of.metric
                && !f.runs.is_empty()
        })
        .map(Figure::median);
    match of.better {
        Better::Higher => medians.max_by(f64::total_cmp),
        Better::Lower => medians.min_by(f64::total_cmp),
    }
}

/// The kernel TCP's median beside a UDP figure of a loss row (raw-tcp in
/// the same namespace), where there is one.
fn kernel_tcp(figures: &[Figure], of: &Figure) -> Option<f64> {
    let lossy = WORKLOADS
        .iter()
        .any(|w| w.name == of.workload && matches!(w.network, Network::Lossy(_)));
    if !lossy || of.family != Family::Udp {
        return None;
    }
    figures
        .iter()
        .find(|f| f.contender == "raw-tcp" && f.workload == of.workload && f.metric == of.metric)
        .map(Figure::median)
}

/// How `value` compares with `reference`: >1 means better for throughput,
/// and for latency the plain quotient (lower is better) is shown.
fn ratio(value: f64, reference: Option<f64>) -> String {
    match reference {
        Some(reference) if reference > 0.0 && value.is_finite() => {
            format!("{:.2}x", value / reference)
        }
        _ => "–".to_owned(),
    }
}

fn table(figures: &[Figure], options: &Options) -> String {
    let mut out = String::from(
        "| contender | workload | metric | median | min | max | vs best peer | vs physical limit | vs kernel TCP |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for figure in figures {
        let sorted = figure.sorted();
        let (min, max) = (
            sorted.first().copied().unwrap_or(f64::NAN),
            sorted.last().copied().unwrap_or(f64::NAN),
        );
        let median = figure.median();
        let vs_peer = if figure.shown_only {
            "not a peer".to_owned()
        } else if figure.kind == Kind::Peer {
            "–".to_owned()
        } else {
            ratio(median, best(figures, figure, Kind::Peer))
        };
        let vs_limit = if figure.kind == Kind::Limit {
            "–".to_owned()
        } else {
            ratio(median, best(figures, figure, Kind::Limit))
        };
        let vs_tcp = match kernel_tcp(figures, figure) {
            Some(tcp) => ratio(median, Some(tcp)),
            None => "–".to_owned(),
        };
        let name = match &figure.label {
            Some(label) => format!("{} ({label})", figure.contender),
            None => figure.contender.to_owned(),
        };
        if let Some(why) = figure.failures.first() {
            let runs = figure.runs.len() + figure.failures.len();
            out.push_str(&format!(
                "| {} | {} | {} ({}) | failed in {} of {runs} runs: {} | | | | | |\n",
                name,
                figure.workload,
                figure.metric,
                figure.unit,
                figure.failures.len(),
                why.replace('|', "/"),
            ));
            if figure.runs.is_empty() {
                continue;
            }
        }
        out.push_str(&format!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} |\n",
            name,
            figure.workload,
            figure.metric,
            figure.unit,
            show(median, figure.unit),
            show(min, figure.unit),
            show(max, figure.unit),
            vs_peer,
            vs_limit,
            vs_tcp
        ));
    }
    if figures.iter().any(|f| f.shown_only) {
        out.push_str(
            "\nquinn's and quinn-bbr's msgs64 write 64-byte records to one stream unframed and count \
             received bytes / 64: quinn's bulk rate in small writes, not a message rate. They are shown, \
             not compared (\"not a peer\"); quinn-framed (length-prefixed prost messages, decoded one \
             by one) is the peer there.\n",
        );
    }
    if figures.iter().any(|f| f.workload == "msgs64-unreliable") {
        out.push_str(
            "\nmsgs64-unreliable: 64-byte prost messages sent unreliably for a fixed time, counted and \
             decoded at the receiver from the first to the last that arrived; received_share is of \
             the messages the sender handed to its transport. raw-udp sends one message per datagram \
             with nothing pacing it; quinn-datagram and protowright pack several per packet under \
             congestion control.\n",
        );
    }
    if figures.iter().any(|f| f.workload == "bulk-rtt20-loss1") {
        let mathis = netem::mathis_bytes_per_s(1448.0, Duration::from_millis(20), 0.01) / 1e6;
        out.push_str(&format!(
            "\nbulk-rtt20-loss1 runs through a userspace relay adding 10 ms each way and 1% loss per \
             1500 bytes of a datagram (a datagram is lost if any of its 1500-byte units is); \
             the Mathis estimate for TCP there (MSS 1448 B) is {mathis:.2} MB/s.\n"
        ));
    }
    if figures
        .iter()
        .any(|f| f.workload.contains("-loss") && !f.workload.contains("rtt20"))
    {
        out.push_str(
            "The loss rows run in a network namespace whose loopback has MTU 1500 and drops that share \
             of packets at random (nftables numgen); compare them with bulk-loss0, the same namespace without loss. \
             raw-tcp there is the kernel's TCP in the same namespace, its congestion control in brackets \
             (\"vs kernel TCP\" compares the UDP contenders with it); it is not in bulk-rtt20-loss1, whose \
             relay carries UDP only.\n",
        );
    }
    let amounts: Vec<String> = WORKLOADS
        .iter()
        .map(|w| format!("{} {}", w.name, options.amount(w)))
        .collect();
    out.push_str(&format!(
        "\n{} runs per figure (amounts: {}: seconds, MiB, connections); ratios are median / median \
         (for throughput higher is better; for latency, memory and time lower is better).\n",
        options.runs,
        amounts.join(", ")
    ));
    out
}

fn show(value: f64, unit: &str) -> String {
    if unit == "of sent" {
        format!("{value:.3}")
    } else if value >= 10_000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn json_report(figures: &[Figure]) -> Value {
    let results: Vec<Value> = figures
        .iter()
        .map(|f| json!({ "contender": f.contender, "label": f.label, "workload": f.workload, "metric": f.metric, "value": f.median(), "unit": f.unit, "runs": f.runs, "failures": f.failures }))
        .collect();
    json!({ "results": results })
}
