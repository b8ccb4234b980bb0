//! The chat in a deterministic simulation (protowright-sim): three members
//! in one room chat through drawn and hand-written fault schedules — loss,
//! duplication, corruption and partitions on reliable UDP; partitions,
//! holds and crashes and restarts of the server on TCP — with the very
//! code that runs on real sockets.
//!
//! What is recorded, and held to what:
//!
//! - Every line a member says is recorded as *sent* to every other member
//!   it believes is in the room, and as *delivered* when a member receives
//!   it. A "flow" is one pair of (the sender's stretch of lines, the
//!   receiver's stretch of membership): a sender's stretch ends when its
//!   connection is lost or a line fails (it may or may not have been said);
//!   a receiver's when its connection is lost or the server dropped events
//!   for it. `check::delivery()` holds every flow to reliable-ordered:
//!   exactly once and in order while it lasts, and everything arrives
//!   unless the flow ended with a failure.
//! - Every `Say` is a call for `check::calls()`: it ends with its answer or
//!   a typed error, never after its deadline, and after the heal it
//!   succeeds.
//! - The server samples the fullest member queue for `check::bounded()`.
//! - After the heal, every member says one more line and waits until it
//!   has every other member's: a fresh line reaches everyone.
//!
//! `PROTOWRIGHT_SEED=<seed>` replays one drawn case;
//! `PROTOWRIGHT_CASES=<n>` runs more.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

mod ledger;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use chat::{ClientOptions, Limits, Session, Update, Updates};
use ledger::{Ledger, Shared, lock};
use protowright::Transport;
use protowright_sim::{
    Case, Cases, Ctx, Event, Failure, Faults, HostResult, Report, Schedule, Sim, Space, check,
    defaults,
};

const PORT: u16 = 7400;
const ROOM: &str = "sim";
const MEMBERS: [&str; 3] = ["ann", "ben", "cat"];
/// Faults happen within this window; everything heals at its end.
const WINDOW: Duration = Duration::from_secs(4);
/// How long after the heal everything must have settled.
const LIVENESS: Duration = Duration::from_secs(4);
/// The time between two lines of one member.
const PACE: Duration = Duration::from_millis(150);
/// Each call's deadline, waiting for a connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// The server's queue per member.
const QUEUE: usize = 64;

/// What may go wrong: on TCP partitions, holds, and crashes and restarts
/// of the server; on reliable UDP datagram faults, partitions and holds.
fn space(transport: Transport) -> Space {
    let hosts = ["server", "ann", "ben", "cat"];
    let space = Space::new(&hosts, WINDOW);
    match transport {
        Transport::Tcp => space.streams_only().restart(&["server"]),
        Transport::Udp => space,
    }
}

fn run(case: Case, transport: Transport) -> Result<Report, Box<Failure>> {
    let ledger = Ledger::shared();
    let mut sim = Sim::new(case.seed)
        .schedule(case.schedule)
        .liveness_bound(LIVENESS)
        .host("server", move |ctx| server(ctx, transport));
    for name in MEMBERS {
        let ledger = Arc::clone(&ledger);
        sim = sim.client(name, move |ctx| member(ctx, transport, ledger));
    }
    sim.check(check::delivery())
        .check(check::calls())
        .check(check::bounded())
        .run()
}

async fn server(ctx: Ctx, transport: Transport) -> HostResult {
    let limits = Limits {
        member_queue: QUEUE,
        ..Limits::default()
    };
    let addr = (Ipv4Addr::UNSPECIFIED, PORT).into();
    let running = chat::serve(ctx.net(), transport, addr, defaults::server(), limits).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let fullest = running.stats().queue_high_water as u64;
        ctx.history()
            .gauge("chat.member_queue", fullest, QUEUE as u64);
    }
}

/// One member: joins, chats until the heal has settled, says a last line
/// and waits for everyone's, then leaves.
async fn member(ctx: Ctx, transport: Transport, ledger: Shared) -> HostResult {
    let me = ctx.host().to_owned();
    let (session, updates) = connect(&ctx, transport).await?;
    lock(&ledger).joined(&me);
    let speaking = speak(&ctx, &session, &ledger);
    let listening = listen(&ctx, updates, &ledger);
    let (spoke, listened) = tokio::join!(speaking, listening);
    // The listener first: when it fails, the speaker fails after it.
    listened?;
    spoke?;
    ctx.history().count("chat.members_done", 1);
    session.quit().await;
    Ok(())
}

/// Connects and joins, retrying while the faults last (the server may be
/// down or cut off when the run starts).
async fn connect(ctx: &Ctx, transport: Transport) -> Result<(Session, Updates), String> {
    let me = ctx.host();
    let options = ClientOptions {
        config: defaults::client(),
        call_timeout: CALL_TIMEOUT,
        // Fixed, so a retry can take over a join that went through
        // although its answer was lost.
        resume: Some(0x5eed_0000 + me.len() as u64 + u64::from(me.as_bytes()[0])),
        ..ClientOptions::default()
    };
    let server = ctx.addr("server", PORT);
    loop {
        let attempt =
            Session::connect(ctx.net(), transport, server, me, ROOM, options.clone()).await;
        match attempt {
            Ok((session, updates, _room)) => return Ok((session, updates)),
            Err(error) if ctx.now() < ctx.settled_at() => {
                ctx.history()
                    .note(format!("{me} could not join yet: {error}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(format!("{me} could not join after the heal: {error}")),
        }
    }
}

/// Says a line every `PACE` until the heal has settled, then the last line
/// once everyone is back in the room; waits until everyone has finished.
async fn speak(ctx: &Ctx, session: &Session, ledger: &Shared) -> Result<(), String> {
    let me = ctx.host();
    while ctx.now() < ctx.settled_at() {
        say(ctx, session, ledger, false).await;
        tokio::time::sleep(PACE).await;
    }
    wait_for(ctx, ledger, "every member back in the room", Ledger::all_in).await?;
    let said = say(ctx, session, ledger, true).await;
    lock(ledger).spoken.insert(me.to_owned());
    if !said {
        return Err(format!("{me}'s last line failed after the heal"));
    }
    wait_for(
        ctx,
        ledger,
        "every member to get every last line",
        Ledger::all_done,
    )
    .await
}

/// Says one line, recorded as sent to every member in the room and as a
/// call; returns whether it was said.
async fn say(ctx: &Ctx, session: &Session, ledger: &Shared, last: bool) -> bool {
    let me = ctx.host();
    let (text, segment) = lock(ledger).line(ctx, me, last);
    let record = ctx.call(Some(CALL_TIMEOUT));
    let said = session.say(&text).await;
    record.outcome(&said, |_| true);
    if let Err(status) = &said {
        ctx.history()
            .note(format!("{me}'s line {text:?} failed: {status}"));
        lock(ledger).line_failed(ctx, me, segment);
    }
    said.is_ok()
}

/// Records what the member receives, and what happens to its connection,
/// until every member has got every last line and this member's own last
/// call has ended (ending sooner would close the session under it).
async fn listen(ctx: &Ctx, mut updates: Updates, ledger: &Shared) -> Result<(), String> {
    let me = ctx.host();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        let update = tokio::select! {
            biased;
            update = updates.next() => update,
            _ = tick.tick() => {
                let ledger = lock(ledger);
                if ledger.all_done() && ledger.spoken.contains(me) {
                    return Ok(());
                }
                continue;
            }
        };
        let history = ctx.history();
        let mut ledger = lock(ledger);
        match update {
            Some(Update::Said(said)) => ledger.delivered(ctx, me, &said),
            Some(Update::Missed(count)) => {
                history.count("chat.missed", count);
                ledger.missed(ctx, me);
            }
            Some(Update::Disconnected { reason }) => {
                history.count("chat.disconnected", 1);
                history.note(format!("{me} lost its connection: {reason}"));
                ledger.lost(ctx, me);
            }
            Some(Update::Rejoined(_)) => {
                history.count("chat.rejoined", 1);
                ledger.joined(me);
            }
            Some(Update::Joined(_) | Update::Left(_)) => {}
            Some(other) => return Err(format!("{me} could not get back in: {other:?}")),
            None => return Err(format!("{me}'s session ended")),
        }
    }
}

/// Waits until `condition` holds of the ledger, for at most 20 s.
async fn wait_for(
    ctx: &Ctx,
    ledger: &Shared,
    what: &str,
    condition: fn(&Ledger) -> bool,
) -> Result<(), String> {
    let give_up = ctx.now() + Duration::from_secs(20);
    while !condition(&lock(ledger)) {
        if ctx.now() > give_up {
            return Err(format!("{} waited in vain for {what}", ctx.host()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn by_hand(schedule: Schedule, transport: Transport) -> Report {
    let case = Case { seed: 5, schedule };
    run(case, transport).unwrap_or_else(|failure| panic!("{failure}"))
}

#[test]
fn over_tcp_every_member_sees_every_line_in_order_through_drawn_partitions_and_server_crashes() {
    let cases = Cases::new(Schedule::strategy(space(Transport::Tcp)), 16);
    let summary = cases.run(|case| run(case, Transport::Tcp));
    summary.require(&["chat.rejoined", "chat.members_done"]);
}

#[test]
fn over_udp_every_member_sees_every_line_in_order_through_drawn_loss_and_partitions() {
    let cases = Cases::new(Schedule::strategy(space(Transport::Udp)), 16);
    let summary = cases.run(|case| run(case, Transport::Udp));
    summary.require(&[
        "fault.dropped",
        "fault.duplicated",
        "fault.corrupted",
        "chat.members_done",
    ]);
}

#[test]
fn over_tcp_a_crashed_and_restarted_server_gets_every_member_back_in_the_room() {
    let report = by_hand(
        Schedule::none()
            .at(secs(1.0), Event::crash("server"))
            .at(secs(2.0), Event::restart("server"))
            .heal_at(secs(2.0)),
        Transport::Tcp,
    );
    assert!(
        report.counter("chat.disconnected") >= 3,
        "everyone lost the server"
    );
    assert!(
        report.counter("chat.rejoined") >= 3,
        "and everyone came back"
    );
    assert_eq!(report.counter("chat.members_done"), 3);
}

#[test]
fn over_tcp_a_member_cut_off_from_the_server_comes_back_and_takes_its_nickname_back() {
    let report = by_hand(
        Schedule::none()
            .at(secs(1.0), Event::partition("ann", "server"))
            .at(secs(3.0), Event::repair("ann", "server"))
            .heal_at(secs(3.0)),
        Transport::Tcp,
    );
    assert!(report.counter("chat.rejoined") >= 1);
    assert!(report.counter("chat.failed_lines") >= 1, "the cut was felt");
    assert_eq!(report.counter("chat.members_done"), 3);
}

#[test]
fn over_udp_heavy_loss_and_a_partition_longer_than_the_idle_timeout_lose_no_line() {
    let report = by_hand(
        Schedule::none()
            .with_faults(Faults::loss(0.2))
            .at(secs(1.0), Event::partition("ben", "server"))
            .at(secs(3.5), Event::repair("ben", "server"))
            .heal_at(WINDOW),
        Transport::Udp,
    );
    assert!(report.faults.lost > 50, "{:?}", report.faults);
    assert!(report.counter("chat.rejoined") >= 1, "ben reconnected");
    assert_eq!(report.counter("chat.members_done"), 3);
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let case = || Case {
        seed: 9,
        schedule: Schedule::none()
            .with_faults(Faults::loss(0.1))
            .at(secs(1.0), Event::partition("cat", "server"))
            .at(secs(2.0), Event::repair("cat", "server"))
            .heal_at(secs(2.0)),
    };
    let first = run(case(), Transport::Udp).unwrap_or_else(|failure| panic!("{failure}"));
    let second = run(case(), Transport::Udp).unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(first.trace_hash, second.trace_hash);
}
