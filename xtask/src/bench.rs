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
/// transport family it is compared within; and the workloads it runs.
struct Contender {
    name: &'static str,
    kind: Kind,
    family: Family,
    workloads: &'static [&'static str],
}

/// Contenders are compared with the peers and the limit of their family.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Tcp,
    Udp,
    Simulation,
}

const ALL: &[&str] = &["msgs64", "rtt64", "bulk", "conns10k"];
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
        workloads: ALL,
    },
    Contender {
        name: "tokio-codec",
        kind: Kind::Peer,
        family: Family::Tcp,
        workloads: ALL,
    },
    Contender {
        name: "protowright-tcp",
        kind: Kind::Ours,
        family: Family::Tcp,
        workloads: ALL,
    },
    Contender {
        name: "tonic",
        kind: Kind::Peer,
        family: Family::Tcp,
        workloads: &["msgs64", "rtt64", "bulk"],
    },
    Contender {
        name: "raw-udp",
        kind: Kind::Limit,
        family: Family::Udp,
        workloads: &["msgs64", "rtt64"],
    },
    Contender {
        name: "quinn",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: UDP_ALL,
    },
    Contender {
        name: "quinn-bbr",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: UDP_ALL,
    },
    Contender {
        name: "kcp",
        kind: Kind::Peer,
        family: Family::Udp,
        workloads: UDP_NO_CONNS,
    },
    Contender {
        name: "protowright-udp",
        kind: Kind::Ours,
        family: Family::Udp,
        workloads: UDP_ALL,
    },
    // The same without encryption (the debugging flag): the cost of
    // encryption per row is protowright-udp's figure against this one.
    Contender {
        name: "protowright-udp-plaintext",
        kind: Kind::Ours,
        family: Family::Udp,
        workloads: &[
            "msgs64",
            "rtt64",
            "bulk",
            "bulk-loss0",
            "bulk-loss5",
            "rtt64-loss5",
        ],
    },
    Contender {
        name: "protowright-sim",
        kind: Kind::Ours,
        family: Family::Simulation,
        workloads: &["sim-seeds"],
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
        amount: 16.0,
        quick: 2.0,
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
    kind: Kind,
    family: Family,
    workload: &'static str,
    metric: &'static str,
    unit: &'static str,
    better: Better,
    runs: Vec<f64>,
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
                    kind: contender.kind,
                    family: contender.family,
                    workload: workload.name,
                    metric,
                    unit,
                    better,
                    runs: Vec::new(),
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
                let result = run_once(
                    &binary,
                    contender.name,
                    workload.base,
                    options.amount(workload),
                    &place,
                )
                .with_context(|| format!("{} {}", contender.name, workload.name))?;
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

/// Where and how a run's processes start.
struct Place<'a> {
    pinning: bool,
    /// Run both processes in this network namespace.
    namespace: Option<&'a str>,
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
                && f.family == of.family
                && f.workload == of.workload
                && f.metric == of.metric
        })
        .map(Figure::median);
    match of.better {
        Better::Higher => medians.max_by(f64::total_cmp),
        Better::Lower => medians.min_by(f64::total_cmp),
    }
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
        "| contender | workload | metric | median | min | max | vs best peer | vs physical limit |\n|---|---|---|---|---|---|---|---|\n",
    );
    for figure in figures {
        let sorted = figure.sorted();
        let (min, max) = (
            sorted.first().copied().unwrap_or(f64::NAN),
            sorted.last().copied().unwrap_or(f64::NAN),
        );
        let median = figure.median();
        let vs_peer = if figure.kind == Kind::Peer {
            "–".to_owned()
        } else {
            ratio(median, best(figures, figure, Kind::Peer))
        };
        let vs_limit = if figure.kind == Kind::Limit {
            "–".to_owned()
        } else {
            ratio(median, best(figures, figure, Kind::Limit))
        };
        out.push_str(&format!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} |\n",
            figure.contender,
            figure.workload,
            figure.metric,
            figure.unit,
            show(median),
            show(min),
            show(max),
            vs_peer,
            vs_limit
        ));
    }
    if figures.iter().any(|f| f.workload == "bulk-rtt20-loss1") {
        let mathis = netem::mathis_bytes_per_s(1448.0, Duration::from_millis(20), 0.01) / 1e6;
        out.push_str(&format!(
            "\nbulk-rtt20-loss1 runs through a userspace relay adding 10 ms each way and 1% loss; \
             the Mathis estimate for TCP there (MSS 1448 B) is {mathis:.2} MB/s.\n"
        ));
    }
    if figures
        .iter()
        .any(|f| f.workload.contains("-loss") && !f.workload.contains("rtt20"))
    {
        out.push_str(
            "The loss rows run in a network namespace whose loopback has MTU 1500 and drops that share \
             of packets at random (nftables numgen); compare them with bulk-loss0, the same namespace without loss.\n",
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

fn show(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn json_report(figures: &[Figure]) -> Value {
    let results: Vec<Value> = figures
        .iter()
        .map(|f| json!({ "contender": f.contender, "workload": f.workload, "metric": f.metric, "value": f.median(), "unit": f.unit, "runs": f.runs }))
        .collect();
    json!({ "results": results })
}
