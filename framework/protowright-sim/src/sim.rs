//! The builder that wires a run together: hosts running the code under
//! test, the fault schedule, the checkers, and one seed for everything.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use protowright::{Client, Server, Transport};

use crate::check::{Check, Run, Violation};
use crate::fault::{FaultControl, FaultCounters, Faulty};
use crate::history::{Entry, History, Observation, counter, extend_hash, trace_hash};
use crate::net::Turmoil;
use crate::schedule::{Event, Schedule};

/// The network the code under test gets in a [`Sim`]: turmoil's, with the
/// datagram fault layer in front of it.
pub type SimNet = Faulty<Turmoil>;

/// What a host's or client's code returns: an error fails the run.
pub type HostResult = Result<(), Box<dyn std::error::Error>>;

/// The simulated clock's start: the same instant in every run, so code that
/// reads the wall clock (through turmoil) replays too.
const EPOCH_SECS: u64 = 1_700_000_000;

type HostFactory = Rc<dyn Fn(Ctx) -> Pin<Box<dyn Future<Output = HostResult>>>>;
type ClientFuture = Pin<Box<dyn Future<Output = HostResult>>>;
type ClientSoftware = Box<dyn FnOnce(Ctx) -> ClientFuture>;

/// One run of a simulation: hosts (servers, restartable) and clients
/// (whose end ends the run) running your code on a simulated network, a
/// fault schedule applied as time passes, then everything healed, then the
/// checkers' verdict on the [`History`] your code wrote.
///
/// ```no_run
/// # use protowright_sim::{Sim, Schedule, check};
/// let report = Sim::new(7)
///     .schedule(Schedule::none())
///     .host("server", |ctx| async move { /* serve on ctx.net() */ Ok(()) })
///     .client("client", |ctx| async move { /* call, record to ctx.history() */ Ok(()) })
///     .check(check::calls())
///     .run()
///     .unwrap_or_else(|failure| panic!("{failure}"));
/// println!("trace hash {:016x}", report.trace_hash);
/// ```
pub struct Sim {
    seed: u64,
    schedule: Schedule,
    latency: Duration,
    limit: Duration,
    liveness: Duration,
    hosts: Vec<(String, HostFactory)>,
    clients: Vec<(String, ClientSoftware)>,
    checks: Vec<Box<dyn Check>>,
    history: History,
    control: FaultControl,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("schedule", &self.schedule)
            .field(
                "hosts",
                &self.hosts.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .field(
                "clients",
                &self.clients.iter().map(|c| &c.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What a host's or client's code gets: its network, the run's history,
/// and when the faults heal.
#[derive(Debug, Clone)]
pub struct Ctx {
    host: String,
    history: History,
    control: FaultControl,
    heal_at: Duration,
    liveness: Duration,
}

impl Ctx {
    /// The network to pass wherever your code takes a `protowright::net::Net`.
    pub fn net(&self) -> SimNet {
        Faulty::on_host(
            Turmoil,
            self.control.clone(),
            turmoil::lookup(self.host.as_str()),
        )
    }

    /// The run's history, to record what your code did and saw.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The fault layer's controls (to change faults from inside the run).
    pub fn faults(&self) -> &FaultControl {
        &self.control
    }

    /// Starts a new sending connection's flow on this host (see
    /// [`History::new_flow`]).
    pub fn new_flow(&self) -> u64 {
        self.history.new_flow(&self.host)
    }

    /// Starts recording a call made from this host with `deadline` (see
    /// [`History::call`]).
    pub fn call(&self, deadline: Option<Duration>) -> crate::history::CallRecord {
        self.history.call_on(Some(&self.host), deadline)
    }

    /// The name of the host this code runs on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The address of `host` (by its name in the simulation).
    pub fn ip(&self, host: &str) -> IpAddr {
        turmoil::lookup(host)
    }

    /// `host`'s address with `port`.
    pub fn addr(&self, host: &str, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip(host), port)
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        turmoil::sim_elapsed().unwrap_or_default()
    }

    /// When every fault heals.
    pub fn heal_at(&self) -> Duration {
        self.heal_at
    }

    /// When liveness is due: the heal plus the run's liveness bound.
    pub fn settled_at(&self) -> Duration {
        self.heal_at + self.liveness
    }

    /// A server on this host at `port`, all addresses, with the
    /// simulation's settings ([`defaults::server`](crate::defaults::server)).
    pub async fn server(
        &self,
        transport: Transport,
        port: u16,
    ) -> Result<Server, protowright::Error> {
        let address = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port);
        Server::bind(self.net(), transport, address, crate::defaults::server()).await
    }

    /// Serves `service` on this host at `port` (a [`server`](Self::server)
    /// serving every connection with a clone of it) until the host is
    /// crashed or the simulation ends: the body of most server hosts.
    pub async fn serve<S>(&self, transport: Transport, port: u16, service: S) -> crate::HostResult
    where
        S: protowright::rpc::Service + Clone,
    {
        self.server(transport, port).await?.serve(service).await;
        Ok(())
    }

    /// A client of `server` with the simulation's settings
    /// ([`defaults::client`](crate::defaults::client)). The first connect
    /// fails fast when the server cannot be reached; in a simulation a
    /// fault may be the reason, so this keeps trying (as a deployment's
    /// supervisor would) until the faults have healed and settled, and only
    /// then gives up with the error.
    pub async fn client(
        &self,
        transport: Transport,
        server: SocketAddr,
    ) -> Result<Client, protowright::Error> {
        loop {
            match Client::connect(self.net(), transport, server, crate::defaults::client()).await {
                Ok(client) => return Ok(client),
                Err(error) if self.now() < self.settled_at() => {
                    self.history
                        .note(format!("{}: {error}; trying again", self.host));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Waits until the heal plus the liveness bound: from then on, what was
    /// pending must have resolved and new work must succeed.
    pub async fn settled(&self) {
        let now = self.now();
        if now < self.settled_at() {
            tokio::time::sleep(self.settled_at() - now).await;
        }
    }
}

impl Sim {
    /// A run whose every random choice comes from `seed`: turmoil's latency
    /// draws, the fault layer, and the randomness of the code under test.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            schedule: Schedule::none(),
            latency: Duration::from_millis(5),
            limit: Duration::from_secs(300),
            liveness: Duration::from_secs(5),
            hosts: Vec::new(),
            clients: Vec::new(),
            checks: Vec::new(),
            history: History::new(),
            control: FaultControl::new(crate::random::derive(seed, crate::random::FAULT_STREAM)),
        }
    }

    /// A run of `case`: its seed and its schedule (what [`Cases`](crate::Cases)
    /// hands each test case).
    pub fn for_case(case: crate::Case) -> Self {
        Self::new(case.seed).schedule(case.schedule)
    }

    /// The faults to apply (default: none).
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The network's one-way latency when no fault changes it (default
    /// 5 ms). It does not vary, so a healed network does not reorder.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// How long after the heal everything pending must have resolved
    /// (default 5 s).
    pub fn liveness_bound(mut self, bound: Duration) -> Self {
        self.liveness = bound;
        self
    }

    /// The most simulated time a run may take before it counts as hung
    /// (default 300 s).
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// A host named `name` running `software`: started at once, and again
    /// after a crash and restart, each time with a fresh [`Ctx`].
    pub fn host<F, Fut>(mut self, name: &str, software: F) -> Self
    where
        F: Fn(Ctx) -> Fut + 'static,
        Fut: Future<Output = HostResult> + 'static,
    {
        let factory: HostFactory = Rc::new(move |ctx| Box::pin(software(ctx)));
        self.hosts.push((name.to_owned(), factory));
        self
    }

    /// A client named `name` running `software` once; the run ends when
    /// every client has finished.
    pub fn client<F, Fut>(mut self, name: &str, software: F) -> Self
    where
        F: FnOnce(Ctx) -> Fut + 'static,
        Fut: Future<Output = HostResult> + 'static,
    {
        self.clients.push((
            name.to_owned(),
            Box::new(move |ctx| Box::pin(software(ctx))),
        ));
        self
    }

    /// Judges the run with `check` too.
    pub fn check(mut self, check: impl Check + 'static) -> Self {
        self.checks.push(Box::new(check));
        self
    }

    /// The run's history (the same one every [`Ctx`] gets).
    pub fn history(&self) -> History {
        self.history.clone()
    }

    fn ctx(&self, host: &str) -> Ctx {
        Ctx {
            host: host.to_owned(),
            history: self.history.clone(),
            control: self.control.clone(),
            heal_at: self.schedule.heal_at,
            liveness: self.liveness,
        }
    }

    /// Runs the simulation to the end, then the checkers. Fails with the
    /// seed, the schedule and the first violation (or the host that failed,
    /// panicked or hung).
    ///
    /// # Panics
    ///
    /// When the schedule has datagram faults from the start but heals at
    /// zero: they would be cleared before the first step, so the run would
    /// test nothing it claims to. Give the schedule a
    /// [`heal_at`](Schedule::heal_at).
    pub fn run(mut self) -> Result<Report, Box<Failure>> {
        use crate::random::{CODE_STREAM, NETWORK_STREAM, derive};
        assert!(
            self.schedule.faults.is_perfect() || self.schedule.heal_at > Duration::ZERO,
            "the schedule ({}) heals its faults at 0 s, before anything runs: \
             set when they end with Schedule::heal_at",
            self.schedule
        );
        crate::random::reseed(derive(self.seed, CODE_STREAM));
        let mut builder = turmoil::Builder::new();
        builder
            .rng_seed(derive(self.seed, NETWORK_STREAM))
            .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
            .simulation_duration(self.limit)
            .min_message_latency(self.latency)
            .max_message_latency(self.latency);
        let mut sim = builder.build();
        self.control.set(self.schedule.faults);
        let mut names: Vec<String> = Vec::new();
        for (name, factory) in &self.hosts {
            let ctx = self.ctx(name);
            let factory = Rc::clone(factory);
            sim.host(name.as_str(), move || factory(ctx.clone()));
            names.push(name.clone());
        }
        let clients = std::mem::take(&mut self.clients);
        for (name, software) in clients {
            let ctx = self.ctx(&name);
            sim.client(name.as_str(), software(ctx));
            names.push(name);
        }
        let mut driver = Driver {
            schedule: &self.schedule,
            history: &self.history,
            control: &self.control,
            names,
            latency: self.latency,
            next: 0,
            healed: false,
            crashed: BTreeSet::new(),
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| driver.drive(&mut sim)));
        let ended = sim.elapsed();
        drop(sim);
        let cause = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(Cause::from_turmoil(error)),
            Err(panic) => Some(Cause::Panicked(panic_text(&panic))),
        };
        self.finish(cause, ended)
    }

    fn finish(self, cause: Option<Cause>, ended: Duration) -> Result<Report, Box<Failure>> {
        let history = self.history.entries();
        let faults = self.control.counters();
        let report = Report {
            seed: self.seed,
            schedule: self.schedule.clone(),
            // The fault layer's counters too: two runs whose hosts logged
            // the same but whose datagrams met other fates differ.
            trace_hash: extend_hash(trace_hash(&history), &format!("{faults:?}")),
            faults,
            ended,
            history,
        };
        let cause = cause.or_else(|| {
            let run = Run {
                history: &report.history,
                schedule: &report.schedule,
                liveness_bound: self.liveness,
                ended,
            };
            self.checks
                .iter()
                .find_map(|check| check.check(&run).err())
                .map(Cause::Violation)
        });
        match cause {
            None => Ok(report),
            Some(cause) => Err(Box::new(Failure {
                report,
                cause,
                replay: None,
                shrunk_from: None,
            })),
        }
    }
}

/// Applies the schedule as the simulation steps.
struct Driver<'a> {
    schedule: &'a Schedule,
    history: &'a History,
    control: &'a FaultControl,
    /// Every host and client, for healing every pair.
    names: Vec<String>,
    latency: Duration,
    /// The next event to apply.
    next: usize,
    healed: bool,
    crashed: BTreeSet<String>,
}

impl Driver<'_> {
    fn drive(&mut self, sim: &mut turmoil::Sim<'_>) -> turmoil::Result<()> {
        loop {
            while let Some((at, event)) = self.schedule.events.get(self.next) {
                if sim.elapsed() < *at {
                    break;
                }
                self.apply(sim, *at, event);
                self.next += 1;
            }
            if !self.healed && sim.elapsed() >= self.schedule.heal_at {
                self.heal(sim);
            }
            if sim.step()? {
                return Ok(());
            }
        }
    }

    fn apply(&mut self, sim: &mut turmoil::Sim<'_>, at: Duration, event: &Event) {
        self.history
            .record_at(at, Observation::Fault(event.to_string()));
        let fired = match event {
            Event::Partition(a, b) => {
                sim.partition(a.as_str(), b.as_str());
                Some("fault.partitions")
            }
            Event::Repair(a, b) => {
                sim.repair(a.as_str(), b.as_str());
                None
            }
            Event::Hold(a, b) => {
                sim.hold(a.as_str(), b.as_str());
                Some("fault.holds")
            }
            Event::Release(a, b) => {
                sim.release(a.as_str(), b.as_str());
                None
            }
            Event::Crash(host) => self.crashed.insert(host.clone()).then(|| {
                self.history
                    .record_at(at, Observation::HostCrashed(host.clone()));
                sim.crash(host.as_str());
                "fault.crashes"
            }),
            Event::Restart(host) => self.crashed.remove(host).then(|| {
                sim.bounce(host.as_str());
                "fault.restarts"
            }),
            Event::SetFaults(faults) => {
                self.control.set(*faults);
                Some("fault.changes")
            }
            Event::SetMaxLatency(max) => {
                // turmoil panics on a maximum below the minimum (the base).
                sim.set_max_message_latency((*max).max(self.latency));
                Some("fault.latency_changes")
            }
        };
        // Coverage a suite can require (`Summary::require`), for the
        // faults that leave no datagram counts behind.
        if let Some(name) = fired {
            self.history.record_at(
                at,
                Observation::Counter {
                    name: name.to_owned(),
                    value: 1,
                },
            );
        }
    }

    /// Ends every fault: clean datagrams, every path repaired and released,
    /// the fixed latency back, crashed hosts restarted.
    fn heal(&mut self, sim: &mut turmoil::Sim<'_>) {
        self.healed = true;
        self.history
            .record_at(self.schedule.heal_at, Observation::Fault("heal".into()));
        self.control.heal();
        for (index, a) in self.names.iter().enumerate() {
            for b in &self.names[index + 1..] {
                sim.repair(a.as_str(), b.as_str());
                sim.release(a.as_str(), b.as_str());
            }
        }
        sim.set_max_message_latency(self.latency);
        for host in std::mem::take(&mut self.crashed) {
            sim.bounce(host.as_str());
        }
    }
}

/// What a successful run leaves: its seed, schedule, trace and counts.
#[derive(Debug, Clone)]
pub struct Report {
    /// The run's seed.
    pub seed: u64,
    /// The schedule that was applied.
    pub schedule: Schedule,
    /// The history, in order.
    pub history: Vec<Entry>,
    /// The run's fingerprint (the history and the fault layer's
    /// counters): the same seed gives the same hash.
    pub trace_hash: u64,
    /// What the fault layer did.
    pub faults: FaultCounters,
    /// When the run ended (simulated time).
    pub ended: Duration,
}

impl Report {
    /// The sum of the coverage counter `name` the code under test recorded.
    pub fn counter(&self, name: &str) -> u64 {
        counter(&self.history, name)
    }
}

/// Why a run failed.
#[derive(Debug, Clone)]
pub enum Cause {
    /// A checker found a broken guarantee.
    Violation(Violation),
    /// A host's or client's code returned an error.
    HostFailed(String),
    /// Code under test panicked.
    Panicked(String),
    /// The run did not finish within its limit: something hung.
    Hung(String),
}

impl Cause {
    fn from_turmoil(error: Box<dyn std::error::Error>) -> Self {
        let text = error.to_string();
        if text.starts_with("Ran for duration") {
            Self::Hung(text)
        } else {
            Self::HostFailed(text)
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Violation(violation) => write!(f, "{violation}"),
            Self::HostFailed(error) => write!(f, "a host's code failed: {error}"),
            Self::Panicked(message) => write!(f, "code under test panicked: {message}"),
            Self::Hung(message) => write!(f, "the run hung: {message}"),
        }
    }
}

/// A failed run: everything needed to understand and replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The run as far as it went.
    pub report: Report,
    /// What went wrong.
    pub cause: Cause,
    /// The command that replays it, when the runner knows one.
    pub replay: Option<String>,
    /// The schedule the failing case had before it was shrunk.
    pub shrunk_from: Option<Schedule>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulation failed: seed {}", self.report.seed)?;
        writeln!(f, "schedule: {}", self.report.schedule)?;
        if let Some(original) = &self.shrunk_from {
            writeln!(f, "  (shrunk from: {original})")?;
        }
        writeln!(f, "{}", self.cause)?;
        writeln!(
            f,
            "trace hash {:016x} after {:.3}s simulated",
            self.report.trace_hash,
            self.report.ended.as_secs_f64()
        )?;
        if let Some(replay) = &self.replay {
            let case = if self.shrunk_from.is_some() {
                " (the case as drawn, before shrinking; it fails too)"
            } else {
                ""
            };
            writeln!(f, "replay{case}: {replay}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(a panic without a message)".into())
}
