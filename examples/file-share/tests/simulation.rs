//! A simulation (protowright-sim, seeded): a 4 MiB file arrives
//! byte-identical over reliable UDP through 10% loss, a partition in the
//! middle of the transfer and a crash and restart of the server, whose
//! shared directory is a real temporary directory that outlives the crash.
//! Every call is recorded and judged by `check::calls()`: each ends in its
//! own response or a typed error, never past its deadline, and calls after
//! the heal succeed. (The same seed does not yet replay the exact same
//! history after the restart: see the ignored test at the end.)

mod common;

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{files_under, pattern, write_files};
use file_share::pb::{
    Chunk, ChunkRequest, FileShareClient, Manifest, ManifestRequest, file_share_methods,
};
use file_share::{Event, GetConfig, Progress, ShareConfig, Summary};
use prost::Message as _;
use protowright::rpc::{CallOptions, Channel, Status};
use protowright::{Client, Method, Transport};
use protowright_sim::history::Observation;
use protowright_sim::{
    Ctx, Event as Fault, Faults, History, HostResult, Schedule, Sim, check, defaults,
};

const PORT: u16 = 9000;
const LEN: usize = 4 << 20;
/// A seed at which chunks arrive in every phase. Under 10% loss a probe
/// lost after the repair backs the transfer off for seconds, so at a few
/// seeds in twenty no chunk lands between the repair and the crash; the
/// phases are spaced so most seeds see all three.
const SEED: u64 = 1;
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One way: with a window of two 64 KiB chunk calls, the transfer then
/// lasts long enough to be cut twice.
const LATENCY: Duration = Duration::from_millis(50);

const PARTITION: Duration = Duration::from_millis(1500);
const REPAIR: Duration = Duration::from_millis(2500);
const CRASH: Duration = Duration::from_millis(5000);
const RESTART: Duration = Duration::from_millis(5500);
const HEAL: Duration = Duration::from_secs(10);

/// A channel that records every call in the run's history, judging
/// whether each response is the call's own (the chunk or manifest page it
/// asked for).
#[derive(Clone)]
struct Recorded<C> {
    inner: C,
    history: History,
}

impl<C: Channel> Channel for Recorded<C> {
    async fn call(
        &self,
        method: &'static Method,
        request: Bytes,
        options: CallOptions,
    ) -> Result<Bytes, Status> {
        let record = self.history.call_on(Some("client"), options.timeout);
        let result = self.inner.call(method, request.clone(), options).await;
        record.outcome(&result, |response| is_own(method, &request, response));
        result
    }
}

fn is_own(method: &Method, request: &Bytes, response: &Bytes) -> bool {
    if *method == file_share_methods::READ_CHUNK {
        let (Ok(asked), Ok(got)) = (
            ChunkRequest::decode(request.clone()),
            Chunk::decode(response.clone()),
        ) else {
            return false;
        };
        asked.index == got.index
    } else if *method == file_share_methods::GET_MANIFEST {
        let (Ok(asked), Ok(got)) = (
            ManifestRequest::decode(request.clone()),
            Manifest::decode(response.clone()),
        ) else {
            return false;
        };
        asked.name == got.name && asked.first_chunk == got.first_chunk
    } else {
        true
    }
}

/// Counts verified chunks in the history, so their times can be read back.
struct Counting(History);

impl Progress for Counting {
    fn event(&self, _name: &str, event: Event) {
        match event {
            Event::Chunk { .. } => self.0.count("chunk verified", 1),
            Event::Note(text) => self.0.note(text),
            _ => {}
        }
    }
}

async fn server(ctx: Ctx, dir: PathBuf) -> HostResult {
    ctx.history().count("server started", 1);
    let mut config = ShareConfig {
        chunk_size: 64 * 1024,
        ..ShareConfig::default()
    };
    config.server = defaults::server();
    config.server.session.max_concurrent_requests = 32;
    let addr = (Ipv4Addr::UNSPECIFIED, PORT).into();
    let _running = file_share::serve(ctx.net(), Transport::Udp, addr, &dir, config)
        .await
        .map_err(|e| e.to_string())?;
    std::future::pending::<()>().await;
    Ok(())
}

async fn client(ctx: Ctx, out: PathBuf, summary: Rc<RefCell<Option<Summary>>>) -> HostResult {
    let server = ctx.addr("server", PORT);
    let client = Client::connect(ctx.net(), Transport::Udp, server, defaults::client()).await?;
    let recorded = Recorded {
        inner: client.clone(),
        history: ctx.history().clone(),
    };
    let share = FileShareClient::new(recorded).with_timeout(CALL_TIMEOUT);
    let config = GetConfig {
        retry_for: Duration::from_secs(30),
        window: 2,
        per_file: 2,
        parallel: 1,
        call_timeout: CALL_TIMEOUT,
        client: defaults::client(),
    };
    let progress = Arc::new(Counting(ctx.history().clone()));
    let done = file_share::download(&share, &["big.bin".to_owned()], &out, &config, progress).await;
    ctx.history().count("reconnects", client.stats().reconnects);
    client.close();
    *summary.borrow_mut() = Some(done);
    Ok(())
}

fn times_of(history: &[protowright_sim::history::Entry], counter: &str) -> Vec<Duration> {
    history
        .iter()
        .filter(|entry| matches!(&entry.what, Observation::Counter { name, .. } if name == counter))
        .map(|entry| entry.at)
        .collect()
}

/// A finished run: its report, the client's summary, and the bytes it
/// downloaded.
struct Run {
    report: protowright_sim::Report,
    summary: Summary,
    downloaded: Vec<u8>,
    left_in_out: Vec<String>,
}

/// Shares `data` as `big.bin` and downloads it in a simulation seeded with
/// `seed`, under the schedule above.
fn simulate(seed: u64, data: &[u8]) -> Run {
    let share = tempfile::tempdir().expect("share dir");
    write_files(share.path(), &[("big.bin", data)]);
    let out = tempfile::tempdir().expect("out dir");
    let schedule = Schedule::none()
        .with_faults(Faults::loss(0.1))
        .at(PARTITION, Fault::partition("client", "server"))
        .at(REPAIR, Fault::repair("client", "server"))
        .at(CRASH, Fault::crash("server"))
        .at(RESTART, Fault::restart("server"))
        .heal_at(HEAL);
    let summary = Rc::new(RefCell::new(None));
    let (dir, out_dir, slot) = (
        share.path().to_owned(),
        out.path().to_owned(),
        Rc::clone(&summary),
    );
    let report = Sim::new(seed)
        .schedule(schedule)
        .latency(LATENCY)
        .limit(Duration::from_secs(120))
        .host("server", move |ctx| server(ctx, dir.clone()))
        .client("client", move |ctx| client(ctx, out_dir, slot))
        .check(check::calls())
        .run()
        .unwrap_or_else(|failure| panic!("{failure}"));
    let summary = summary.borrow_mut().take().expect("the client finished");
    Run {
        report,
        summary,
        downloaded: std::fs::read(out.path().join("big.bin")).unwrap_or_default(),
        left_in_out: files_under(out.path()),
    }
}

#[test]
fn four_mebibytes_arrive_through_loss_a_partition_and_a_server_crash() {
    let data = pattern(LEN, 4);
    let Run {
        report,
        summary,
        downloaded,
        left_in_out,
    } = simulate(SEED, &data);

    let failures: Vec<String> = summary
        .failures()
        .map(|(n, e)| format!("{n}: {e}"))
        .collect();
    assert!(summary.all_verified(), "{summary}: {failures:?}");
    assert!(downloaded == data, "not byte-identical");
    assert_eq!(left_in_out, ["big.bin"]);

    // The faults fired, in the middle of the transfer.
    assert!(report.faults.lost > 0, "{:?}", report.faults);
    assert_eq!(
        report.counter("server started"),
        2,
        "the server crashed and restarted"
    );
    assert!(
        report.counter("reconnects") >= 1,
        "the client reconnected to the restarted server"
    );
    let chunks = times_of(&report.history, "chunk verified");
    assert_eq!(chunks.len(), LEN / (64 * 1024), "each chunk verified once");
    assert!(
        chunks.iter().any(|at| *at < PARTITION),
        "chunks arrived before the partition"
    );
    assert!(
        chunks.iter().any(|at| (REPAIR..CRASH).contains(at)),
        "and between repair and crash: {chunks:?}, {}",
        report
            .history
            .iter()
            .filter(|e| format!("{:?}", e.what).contains("onnect"))
            .map(|e| format!("{e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        chunks.iter().any(|at| *at > RESTART),
        "and after the restart"
    );
}

/// The same seed, the same run, trace hash and all — including the calls
/// that wait together for the reconnect after the server's restart: tokio
/// wakes a `watch` channel's waiters in an order drawn from its own
/// generator, which turmoil seeds from the run's seed because the workspace
/// builds with `--cfg tokio_unstable` (without it, the order and so the
/// trace would differ from run to run).
#[test]
fn the_same_seed_replays_the_same_run() {
    let data = pattern(LEN, 4);
    let first = simulate(SEED, &data).report;
    let second = simulate(SEED, &data).report;
    let diverged = first
        .history
        .iter()
        .zip(&second.history)
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("first difference:\n  {a}\n  {b}"));
    assert_eq!(
        first.trace_hash,
        second.trace_hash,
        "seed {SEED} did not replay the same history; {}",
        diverged.unwrap_or_default()
    );
}
