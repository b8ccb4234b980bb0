//! The standard scenario: a client streams numbered messages on every
//! delivery to a server and makes RPC calls, through whatever the schedule
//! throws at them, then closes gracefully after the heal.
//!
//! The client records every message it sends (per connection: each new
//! connection is a new flow) and every call; the server records every
//! message it receives. The checkers then hold each delivery to its
//! guarantee, every call to a correct outcome, and liveness after the heal.

use std::time::Duration;

use protowright::{Client, Connection, ConnectionState, Transport};
use protowright_sim::check;
use protowright_sim::{Case, Ctx, Failure, HostResult, Report, Sim, Space};
use protowright_testing::pb::{Payload, Probe as _, ProbeClient, ProbeServer, Traffic};
use protowright_testing::{Probe, Stream};

const PORT: u16 = 9000;

/// How long the faults last at most: everything heals at its end.
pub const WINDOW: Duration = Duration::from_secs(4);

/// How long after the heal everything pending must have resolved.
pub const LIVENESS: Duration = Duration::from_secs(3);

/// The time between two messages.
const PACE: Duration = Duration::from_millis(20);

/// What may go wrong for `transport`: datagram faults (reliable UDP only:
/// TCP's streams pass the fault layer untouched), partitions and holds,
/// and crashes and restarts of either side.
pub fn space(transport: Transport) -> Space {
    let space = Space::new(&["client", "server"], WINDOW).restart(&["client", "server"]);
    match transport {
        Transport::Tcp => space.streams_only(),
        Transport::Udp => space,
    }
}

/// The stream of the `n`th message, and its size (every seventh reliable
/// one is large enough to fragment; unreliable ones fit a datagram, so the
/// share that arrives under loss follows the loss).
fn route(n: u64) -> (Stream, usize) {
    let stream = Stream::ALL[(n % Stream::ALL.len() as u64) as usize];
    let reliable = matches!(
        stream,
        Stream::OrderedA | Stream::OrderedB | Stream::Unordered
    );
    let size = if reliable && n % 7 == 0 { 3_000 } else { 64 };
    (stream, size)
}

/// A deliberate bug, for the checkers' own tests: each makes the code
/// between the transport and the history misbehave the way a broken
/// transport would, so a test can show the checkers catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutant {
    /// No bug: the real transport.
    None,
    /// Loses one reliable message once the path has lost a datagram.
    LoseReliable,
    /// Delivers one message twice.
    Duplicate,
    /// Swaps two messages of an ordered stream.
    Reorder,
    /// Answers a call with another call's response once the path has lost
    /// a datagram.
    WrongResponse,
    /// Lets a call that timed out end a second late.
    HangPastDeadline,
}

/// Runs the scenario for `case` on `transport`.
pub fn run(case: Case, transport: Transport) -> Result<Report, Box<Failure>> {
    run_mutant(case, transport, Mutant::None)
}

/// Runs the scenario with a deliberate bug.
pub fn run_mutant(
    case: Case,
    transport: Transport,
    mutant: Mutant,
) -> Result<Report, Box<Failure>> {
    Sim::new(case.seed)
        .schedule(case.schedule)
        .liveness_bound(LIVENESS)
        .host("server", move |ctx| server(ctx, transport, mutant))
        .host("client", move |ctx| client(ctx, transport, mutant))
        .client("clock", |ctx| async move {
            // The run lasts until the client has stopped sending and its
            // last messages have landed.
            tokio::time::sleep(stop_at(&ctx) + Duration::from_millis(1500)).await;
            Ok(())
        })
        .check(check::delivery())
        .check(check::calls())
        .check(check::unreliable_share(0.12))
        .check(check::bounded())
        .run()
}

async fn server(ctx: Ctx, transport: Transport, mutant: Mutant) -> HostResult {
    let mut server = ctx.server(transport, PORT).await?;
    while let Some(incoming) = server.accept().await {
        let service = Echoer {
            ctx: ctx.clone(),
            wrong: mutant == Mutant::WrongResponse,
        };
        let connection = incoming.serve(ProbeServer::new(service));
        tokio::spawn(receive(ctx.clone(), connection, mutant));
    }
    Ok(())
}

/// The probe service, with the wrong-response bug when asked for.
struct Echoer {
    ctx: Ctx,
    wrong: bool,
}

impl protowright_testing::pb::Probe for Echoer {
    async fn echo(&self, mut request: Payload) -> Result<Payload, protowright::rpc::Status> {
        if self.wrong && self.ctx.faults().counters().dropped() > 0 {
            request.id += 1;
        }
        Ok(request)
    }

    async fn sleep(
        &self,
        request: protowright_testing::pb::Nap,
    ) -> Result<Payload, protowright::rpc::Status> {
        Probe::default().sleep(request).await
    }

    async fn fail(&self, request: Payload) -> Result<Payload, protowright::rpc::Status> {
        Probe::default().fail(request).await
    }

    async fn block(&self, request: Payload) -> Result<Payload, protowright::rpc::Status> {
        Probe::default().block(request).await
    }

    async fn double(&self, request: Payload) -> Result<Payload, protowright::rpc::Status> {
        Probe::default().double(request).await
    }

    async fn overloaded(&self, request: Payload) -> Result<Payload, protowright::rpc::Status> {
        Probe::default().overloaded(request).await
    }

    async fn push(
        &self,
        request: protowright_testing::pb::Burst,
    ) -> Result<Payload, protowright::rpc::Status> {
        Probe::default().push(request).await
    }
}

/// Records every message of one connection, then its transport's counts.
async fn receive(ctx: Ctx, connection: Connection, mutant: Mutant) {
    let history = ctx.history();
    let mut bug = Bug::new(mutant);
    let limits = protowright_sim::defaults::session();
    let mut received = 0u64;
    let mut counts = Counts::default();
    while let Ok(Some(message)) = connection.recv::<Traffic>().await {
        if let Some((stream, flow, seq, intact)) = Stream::read_flow(&message) {
            for seq in bug.deliver(&ctx, stream, seq) {
                history.delivered(flow, stream.name(), stream.delivery(), seq, intact);
            }
        }
        received += 1;
        if received % 16 == 0 {
            // The connection's queues stay within their configured bounds.
            let session = connection.stats().session;
            history.gauge(
                "server.inbox",
                session.inbox_depth as u64,
                limits.message_queue as u64,
            );
            history.gauge(
                "server.outbox",
                session.queue_depth as u64,
                limits.outgoing_queue as u64,
            );
            counts.record(&ctx, &connection);
        }
    }
    counts.record(&ctx, &connection);
}

/// The receiving side's deliberate bugs.
struct Bug {
    mutant: Mutant,
    done: bool,
    held: Option<u64>,
}

impl Bug {
    fn new(mutant: Mutant) -> Self {
        Self {
            mutant,
            done: false,
            held: None,
        }
    }

    /// The message numbers to record for the arrival of `seq` on `stream`.
    fn deliver(&mut self, ctx: &Ctx, stream: Stream, seq: u64) -> Vec<u64> {
        let reliable = matches!(
            stream.delivery(),
            protowright::Delivery::ReliableOrdered | protowright::Delivery::ReliableUnordered
        );
        match self.mutant {
            Mutant::LoseReliable
                if !self.done && reliable && ctx.faults().counters().dropped() > 0 =>
            {
                self.done = true;
                vec![]
            }
            Mutant::Duplicate if !self.done && seq == 3 => {
                self.done = true;
                vec![seq, seq]
            }
            Mutant::Reorder if !self.done && stream == Stream::OrderedA && seq == 2 => {
                self.held = Some(seq);
                vec![]
            }
            Mutant::Reorder if stream == Stream::OrderedA && self.held.is_some() => {
                self.done = true;
                let held = self.held.take().unwrap_or_default();
                vec![seq, held]
            }
            _ => vec![seq],
        }
    }
}

async fn client(ctx: Ctx, transport: Transport, mutant: Mutant) -> HostResult {
    let client = ctx.client(transport, ctx.addr("server", PORT)).await?;
    let probe = ProbeClient::new(client.clone()).with_timeout(Duration::from_millis(500));
    let stop_at = stop_at(&ctx);
    let mut n = 0u64;
    while ctx.now() < stop_at {
        let Ok(connection) = client.connection().await else {
            if matches!(
                client.state(),
                ConnectionState::GaveUp { .. } | ConnectionState::Closed
            ) {
                break;
            }
            // Not connected yet: try again later, without spinning.
            tokio::time::sleep(PACE).await;
            continue;
        };
        let flow = ctx.new_flow();
        let mut seqs = [0u64; Stream::ALL.len()];
        let mut counts = Counts::default();
        let clean = loop {
            if ctx.now() >= stop_at {
                break true;
            }
            let (stream, size) = route(n);
            let seq = &mut seqs[stream as usize];
            if connection
                .send(stream.message_in(flow, *seq, size))
                .await
                .is_err()
            {
                break false;
            }
            ctx.history()
                .sent(flow, stream.name(), stream.delivery(), *seq);
            *seq += 1;
            n += 1;
            if n % 16 == 0 {
                counts.record(&ctx, &connection);
                send_buffer_gauge(&ctx, &connection);
            }
            if n % 4 == 0 {
                call(&ctx, &probe, n, mutant).await;
            }
            tokio::time::sleep(PACE).await;
        };
        counts.record(&ctx, &connection);
        if clean {
            connection.close();
            let closed = connection.closed().await;
            ctx.history().flow_ended(flow, closed.is_ok());
        } else {
            ctx.history().flow_ended(flow, false);
        }
    }
    ctx.history()
        .count("client.reconnects", client.stats().reconnects);
    client.close();
    Ok(())
}

/// The reliable-UDP send buffer stays within its configured size, however
/// much is lost and resent.
fn send_buffer_gauge(ctx: &Ctx, connection: &Connection) {
    if let Some(udp) = connection.stats().udp {
        ctx.history().gauge(
            "client.udp_send_buffer",
            udp.queues.bytes,
            protowright_sim::defaults::udp().send_buffer,
        );
    }
}

/// When the client stops sending: a second after liveness is due.
fn stop_at(ctx: &Ctx) -> Duration {
    ctx.settled_at() + Duration::from_secs(1)
}

/// One echo call, recorded: its answer must carry its own id.
async fn call(ctx: &Ctx, probe: &ProbeClient<Client>, id: u64, mutant: Mutant) {
    let record = ctx.call(Some(Duration::from_millis(500)));
    let result = probe
        .echo(Payload {
            id,
            ..Payload::default()
        })
        .await;
    if mutant == Mutant::HangPastDeadline
        && result
            .as_ref()
            .is_err_and(|s| s.code() == protowright::rpc::Code::DeadlineExceeded)
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    record.outcome(&result, |reply| reply.id == id);
}

/// A connection's transport counts, the proof recovery ran: recorded as
/// they grow, since a connection that ends is soon forgotten with its
/// counters.
#[derive(Debug, Default)]
struct Counts {
    seen: [u64; 5],
}

impl Counts {
    const NAMES: [&'static str; 5] = [
        "udp.retransmitted",
        "udp.packets_lost",
        "udp.duplicates_dropped",
        "udp.reorders_buffered",
        "udp.unreliable_dropped",
    ];

    fn record(&mut self, ctx: &Ctx, connection: &Connection) {
        let Some(udp) = connection.stats().udp else {
            return;
        };
        let now = [
            udp.packets_retransmitted,
            udp.packets_lost,
            udp.duplicates,
            udp.early_buffered,
            udp.unreliable_dropped,
        ];
        for ((name, now), seen) in Self::NAMES.iter().zip(now).zip(&mut self.seen) {
            if now > *seen {
                ctx.history().count(name, now - *seen);
                *seen = now;
            }
        }
    }
}

/// The outcomes of the calls started in `[from, to)`: `Ok` for an answer,
/// the failure's code otherwise.
pub fn calls_between(
    report: &Report,
    from: Duration,
    to: Duration,
) -> Vec<Result<(), protowright::rpc::Code>> {
    use protowright_sim::history::{CallOutcome, Observation};
    let started: std::collections::BTreeMap<u64, Duration> = report
        .history
        .iter()
        .filter_map(|e| match e.what {
            Observation::CallStarted { call, .. } => Some((call, e.at)),
            _ => None,
        })
        .collect();
    report
        .history
        .iter()
        .filter_map(|e| match e.what {
            Observation::CallEnded { call, outcome } => {
                let at = *started.get(&call)?;
                (at >= from && at < to).then_some(match outcome {
                    CallOutcome::Answered { .. } => Ok(()),
                    CallOutcome::Failed(code) => Err(code),
                })
            }
            _ => None,
        })
        .collect()
}
