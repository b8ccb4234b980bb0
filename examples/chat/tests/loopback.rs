//! The chat over real loopback sockets, on both transports: what members
//! see of each other, which nicknames are refused, and a member that never
//! reads.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat::{ClientOptions, Limits, Running, Session, Update, Updates, pb};
use protowright::net::Tokio;
use protowright::rpc::Code;
use protowright::{ServerConfig, Transport};

/// How long any one expected update may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start(transport: Transport, config: ServerConfig, limits: Limits) -> Running {
    let addr = (Ipv4Addr::LOCALHOST, 0).into();
    chat::serve(Tokio, transport, addr, config, limits)
        .await
        .expect("the server starts")
}

async fn join(
    server: &Running,
    nick: &str,
    options: ClientOptions,
) -> (Session, Updates, pb::JoinReply) {
    Session::connect(
        Tokio,
        server.transport(),
        server.addr(),
        nick,
        "lobby",
        options,
    )
    .await
    .unwrap_or_else(|error| panic!("{nick} joins: {error}"))
}

async fn next(updates: &mut Updates) -> Update {
    tokio::time::timeout(PATIENCE, updates.next())
        .await
        .expect("an update in time")
        .expect("the session is still running")
}

/// The next `count` lines, which must all be `nick`'s: anything else is a
/// failure.
async fn lines_of(updates: &mut Updates, nick: &str, count: usize) -> Vec<pb::Said> {
    let mut lines = Vec::with_capacity(count);
    while lines.len() < count {
        match next(updates).await {
            Update::Said(said) if said.nick == nick => lines.push(said),
            other => panic!("expected a line of {nick}, got {other:?}"),
        }
    }
    lines
}

fn texts(lines: &[pb::Said]) -> Vec<&str> {
    lines.iter().map(|s| s.text.as_str()).collect()
}

fn joined(nick: &str) -> Update {
    Update::Joined(pb::Joined {
        room: "lobby".into(),
        nick: nick.into(),
    })
}

fn left(nick: &str, reason: &str) -> Update {
    Update::Left(pb::Left {
        room: "lobby".into(),
        nick: nick.into(),
        reason: reason.into(),
    })
}

async fn two_members_see_each_other(transport: Transport) {
    let server = start(transport, ServerConfig::default(), Limits::default()).await;
    let (ada, mut ada_sees, reply) = join(&server, "ada", ClientOptions::default()).await;
    assert_eq!(
        (reply.members, reply.history),
        (vec!["ada".to_owned()], vec![])
    );
    for n in 1..=3 {
        ada.say(&format!("before bob {n}")).await.unwrap();
    }

    let (bob, mut bob_sees, reply) = join(&server, "bob", ClientOptions::default()).await;
    assert_eq!(reply.members, ["ada", "bob"]);
    assert_eq!(
        texts(&reply.history),
        ["before bob 1", "before bob 2", "before bob 3"],
        "history on join"
    );
    assert_eq!(next(&mut ada_sees).await, joined("bob"));

    // Both talk at once: each sees all of the other's lines, in order.
    let talk = |session: Session, nick: &'static str| {
        tokio::spawn(async move {
            for n in 1..=50 {
                session.say(&format!("{nick} {n}")).await.unwrap();
            }
            session
        })
    };
    let (ada_talks, bob_talks) = (talk(ada, "ada"), talk(bob, "bob"));
    let bob_got = lines_of(&mut bob_sees, "ada", 50).await;
    let ada_got = lines_of(&mut ada_sees, "bob", 50).await;
    let (ada, bob) = (ada_talks.await.unwrap(), bob_talks.await.unwrap());
    let numbered = |nick: &str| (1..=50).map(|n| format!("{nick} {n}")).collect::<Vec<_>>();
    assert_eq!(texts(&bob_got), numbered("ada"));
    assert_eq!(texts(&ada_got), numbered("bob"));
    let mut seqs: Vec<u64> = bob_got.iter().chain(&ada_got).map(|s| s.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 100, "every line has its own number in the room");

    // A member whose connection ends leaves; one who quits leaves too.
    let (carol, _carol_sees, _) = join(&server, "carol", ClientOptions::default()).await;
    assert_eq!(next(&mut ada_sees).await, joined("carol"));
    assert_eq!(next(&mut bob_sees).await, joined("carol"));
    carol.close();
    assert_eq!(next(&mut ada_sees).await, left("carol", "disconnected"));
    assert_eq!(next(&mut bob_sees).await, left("carol", "disconnected"));
    bob.quit().await;
    assert_eq!(next(&mut ada_sees).await, left("bob", "left"));
    assert_eq!(bob_sees.next().await, None, "a quit session's updates end");
    let rooms = ada.list().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].members, ["ada"]);
    ada.quit().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_two_members_see_each_others_lines_in_order_joins_leaves_and_history() {
    two_members_see_each_other(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_udp_two_members_see_each_others_lines_in_order_joins_leaves_and_history() {
    two_members_see_each_other(Transport::Udp).await;
}

async fn refusals(transport: Transport) {
    let server = start(transport, ServerConfig::default(), Limits::default()).await;
    let (ada, _ada_sees, _) = join(&server, "ada", ClientOptions::default()).await;
    let attempt = |nick: &'static str, room: &'static str| {
        let server = server.clone();
        async move {
            let options = ClientOptions::default();
            let (addr, transport) = (server.addr(), server.transport());
            match Session::connect(Tokio, transport, addr, nick, room, options).await {
                Ok(_) => panic!("{nick} in {room} was let in"),
                Err(error) => {
                    let status = error.status().expect("a refusal, not a failure to connect");
                    (status.code(), error.to_string())
                }
            }
        }
    };
    assert_eq!(
        attempt("ada", "lobby").await,
        (
            Code::AlreadyExists,
            "the server refused to let you in: ALREADY_EXISTS: the nickname `ada` is taken; pick another".to_owned()
        )
    );
    let (code, text) = attempt("ada lovelace", "lobby").await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        text.ends_with(
            "the nickname `ada lovelace` contains ' '; use ASCII letters, digits, `-` and `_`"
        ),
        "{text}"
    );
    let (code, text) = attempt("seventeen_letters", "lobby").await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        text.ends_with("the nickname is 17 characters long; at most 16 are allowed"),
        "{text}"
    );
    let (code, text) = attempt("eve", "#lobby").await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        text.contains("the room name `#lobby` contains '#'"),
        "{text}"
    );
    // Nothing of the refused attempts stayed behind.
    let rooms = ada.list().await.unwrap();
    assert_eq!(
        (rooms.len(), rooms[0].members.clone()),
        (1, vec!["ada".to_owned()])
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_a_taken_or_bad_nickname_is_refused_with_a_clear_status() {
    refusals(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_udp_a_taken_or_bad_nickname_is_refused_with_a_clear_status() {
    refusals(Transport::Udp).await;
}

/// The server's queue for one member, small so a flood fills it soon.
const BOUND: usize = 32;

async fn a_member_that_never_reads(transport: Transport) {
    // Small transport buffers on the server, so the stuck member's
    // backlog reaches the chat's own queue soon; no write-stall timeout, so
    // protowright does not disconnect the stuck member while the test runs
    // (by default it would after 10 s without progress).
    let mut config = ServerConfig::default();
    config.session.outgoing_queue = 16;
    config.session.outgoing_bytes = 16 * 1024;
    config.session.write_stall_timeout = None;
    config.udp.send_buffer = 64 * 1024;
    let limits = Limits {
        member_queue: BOUND,
        ..Limits::default()
    };
    let server = start(transport, config, limits).await;
    let (ada, mut ada_sees, _) = join(&server, "ada", ClientOptions::default()).await;
    // The stuck member buffers as little as it can, and never reads.
    let mut stuck_options = ClientOptions {
        updates: 1,
        ..ClientOptions::default()
    };
    stuck_options.config.session.message_queue = 1;
    stuck_options.config.udp.max_message_size = 64 * 1024;
    stuck_options.config.udp.receive_window = 64 * 1024;
    let (_stuck, mut stuck_sees, _) = join(&server, "stuck", stuck_options).await;
    let (_bob, mut bob_sees, _) = join(&server, "bob", ClientOptions::default()).await;
    assert_eq!(next(&mut ada_sees).await, joined("stuck"));
    assert_eq!(next(&mut ada_sees).await, joined("bob"));

    // Bob reads everything Ada says, in order, while Ada floods the room.
    // Bob's queue on the server has the same small bound, so Ada keeps
    // within half of it of what Bob has read: on a loaded machine Bob's
    // task may otherwise fall behind by more than the bound, and be told
    // he missed lines (the policy working, but not what this test is
    // about). The stuck member never reads, and holds Ada up not at all.
    let bob_has_read = Arc::new(AtomicU64::new(0));
    let progress = Arc::clone(&bob_has_read);
    let bob_reads = tokio::spawn(async move {
        let mut expected = 0u64;
        loop {
            match next(&mut bob_sees).await {
                Update::Said(said) if said.text == "done" => return expected,
                Update::Said(said) => {
                    let n: u64 = said.text[..6].parse().unwrap();
                    assert_eq!(n, expected, "bob got Ada's lines in order, all of them");
                    expected += 1;
                    progress.store(expected, Ordering::Relaxed);
                }
                other => panic!("bob saw {other:?}"),
            }
        }
    });
    let padding = "x".repeat(900);
    let started = std::time::Instant::now();
    let mut said = 0u64;
    loop {
        while said - bob_has_read.load(Ordering::Relaxed) > BOUND as u64 / 2 {
            assert!(
                started.elapsed() < Duration::from_secs(240) && !bob_reads.is_finished(),
                "bob stopped reading at line {}",
                bob_has_read.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        ada.say(&format!("{said:06} {padding}")).await.unwrap();
        said += 1;
        let dropped = server.member_queue("stuck").unwrap().dropped;
        if dropped >= 4 * BOUND as u64 {
            break;
        }
        assert!(
            said < 200_000 && started.elapsed() < Duration::from_secs(240),
            "{said} lines did not fill the stuck member's queue ({dropped} dropped)"
        );
    }
    eprintln!("{transport}: {said} lines filled the queue");
    ada.say("done").await.unwrap();
    assert_eq!(bob_reads.await.unwrap(), said, "bob got every line");
    let queue = server.member_queue("stuck").unwrap();
    assert!(queue.high_water <= BOUND, "{queue:?}");
    assert!(queue.dropped > 0, "{queue:?}");

    // Now the stuck member reads: it is told how many it missed, and what
    // it missed plus what it got is everything the room said.
    let (mut got, mut missed, mut last) = (0u64, 0u64, None::<u64>);
    loop {
        match next(&mut stuck_sees).await {
            Update::Said(said) if said.text == "done" => break,
            Update::Said(said) => {
                assert!(last < Some(said.seq), "in order");
                last = Some(said.seq);
                got += 1;
            }
            Update::Missed(count) => missed += count,
            Update::Joined(_) => got += 1,
            other => panic!("the stuck member saw {other:?}"),
        }
    }
    assert!(missed > 0, "told it missed some");
    let dropped = server.member_queue("stuck").unwrap().dropped;
    assert_eq!(missed, dropped, "told exactly how many");
    assert_eq!(
        got + missed,
        said + 1,
        "the rest arrived (Bob's join and the lines)"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_a_member_that_never_reads_holds_up_nobody_and_is_told_what_it_missed() {
    a_member_that_never_reads(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_udp_a_member_that_never_reads_holds_up_nobody_and_is_told_what_it_missed() {
    a_member_that_never_reads(Transport::Udp).await;
}
