//! The game over real reliable-UDP sockets on loopback: joining, seeing
//! oneself and each other move, leaving, the refusals, and the channel
//! guarantees as a player sees them.

use std::net::Ipv4Addr;
use std::time::Duration;

use game::pb::{Event, event};
use game::{BotSettings, GameServer, Player, Settings, Update};
use protowright::net::Tokio;
use protowright::{Client, ClientConfig, Transport};
use tokio::time::{Instant, timeout};

/// The most any one test waits for what it expects.
const PATIENCE: Duration = Duration::from_secs(10);

async fn start(settings: Settings) -> GameServer {
    game::serve(Tokio, (Ipv4Addr::LOCALHOST, 0).into(), settings)
        .await
        .expect("the server starts")
}

async fn join(game: &GameServer, name: &str) -> Player {
    Player::connect(Tokio, game.local_addr(), name, ClientConfig::default())
        .await
        .expect("the player joins")
}

/// Reads `player`'s updates until `done` holds for one, and returns the
/// events seen on the way; panics after [`PATIENCE`].
async fn read_until(player: &mut Player, mut done: impl FnMut(&Update) -> bool) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let update = tokio::time::timeout_at(deadline, player.next())
            .await
            .expect("what was awaited arrived in time")
            .expect("the connection holds")
            .expect("the server keeps the game open");
        if let Update::Event(event) = &update {
            events.push(event.clone());
        }
        if done(&update) {
            return events;
        }
    }
}

/// Steers `player` toward `(x, y)` once per tick for `duration` while
/// reading; returns `other`'s state in each snapshot seen.
async fn steer_and_watch(
    mut player: Player,
    (x, y): (f32, f32),
    duration: Duration,
    other: u32,
) -> (Player, Vec<game::pb::PlayerState>) {
    let mut seen = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(33));
    let end = tokio::time::sleep(duration);
    tokio::pin!(end);
    loop {
        tokio::select! {
            biased;
            () = &mut end => break,
            update = player.next() => {
                if let Some(Update::Snapshot(snapshot)) = update.expect("the connection holds") {
                    seen.extend(snapshot.players.into_iter().filter(|p| p.id == other));
                }
            }
            _ = ticks.tick() => { let _ = player.steer(x, y); }
        }
    }
    (player, seen)
}

#[tokio::test]
async fn a_player_sees_its_own_join_and_itself_in_the_snapshots() {
    let game = start(Settings::default()).await;
    let mut player = join(&game, "ada").await;
    let me = player.id();
    assert_eq!(player.welcome().tick_hz, 30);
    // Its own join event, and a snapshot with itself in it, in either order.
    let (mut saw_join, mut saw_itself) = (false, false);
    let events = read_until(&mut player, |update| {
        match update {
            Update::Event(_) => saw_join = true,
            Update::Snapshot(s) => saw_itself |= s.players.iter().any(|p| p.id == me),
        }
        saw_join && saw_itself
    })
    .await;
    assert_eq!(events[0].seq, 0, "{events:?}");
    assert_eq!(
        events[0].kind,
        Some(event::Kind::Joined(game::pb::Joined {
            player: me,
            name: "ada".into()
        }))
    );
    let snapshot = player.view().newest.clone().expect("a snapshot");
    assert_eq!(snapshot.coins.len(), game::world::COINS);
    game.shutdown().await;
    // The server's shutdown ends the game cleanly for the player.
    let end = timeout(PATIENCE, async {
        loop {
            match player.next().await {
                Ok(Some(_)) => {}
                other => return other.map(|_| ()),
            }
        }
    })
    .await
    .expect("the game ends in time");
    assert!(end.is_ok(), "a clean end, not {end:?}");
}

#[tokio::test]
async fn two_players_see_each_other_move() {
    let game = start(Settings::default()).await;
    let ada = join(&game, "ada").await;
    let bob = join(&game, "bob").await;
    let (ada_id, bob_id) = (ada.id(), bob.id());
    let watch = Duration::from_millis(800);
    let ((_ada, bob_seen_by_ada), (_bob, ada_seen_by_bob)) = tokio::join!(
        steer_and_watch(ada, (1.0, 0.0), watch, bob_id),
        steer_and_watch(bob, (0.0, -1.0), watch, ada_id),
    );
    // Each saw the other's inputs applied and the other moving its way.
    for (seen, axis, who) in [
        (&ada_seen_by_bob, 'x', "ada"),
        (&bob_seen_by_ada, 'y', "bob"),
    ] {
        let first = seen.first().unwrap_or_else(|| panic!("{who} was seen"));
        let last = seen.last().expect("seen");
        assert!(
            last.input > first.input,
            "{who}'s inputs were applied: {first:?} .. {last:?}"
        );
        let moving_its_way = seen.iter().any(|p| match axis {
            'x' => p.vx > 1.0,
            _ => p.vy < -1.0,
        });
        assert!(moving_its_way, "{who} moved along {axis}: {seen:?}");
        let moved = seen
            .iter()
            .map(|p| (p.x - first.x).hypot(p.y - first.y))
            .fold(0.0f32, f32::max);
        assert!(moved > 1.0, "{who} moved {moved} units");
    }
    game.shutdown().await;
}

#[tokio::test]
async fn a_leave_is_reported_to_the_other_player() {
    let game = start(Settings::default()).await;
    let mut ada = join(&game, "ada").await;
    let bob = join(&game, "bob").await;
    let bob_id = bob.id();
    bob.leave();
    let events = read_until(&mut ada, |update| {
        matches!(update, Update::Event(Event { kind: Some(event::Kind::Left(left)), .. }) if left.player == bob_id)
    })
    .await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.clone()).collect();
    assert!(
        matches!(kinds[..], [.., Some(event::Kind::Joined(ref j)), Some(event::Kind::Left(_))] if j.player == bob_id),
        "ada saw bob join, then leave: {kinds:?}"
    );
    assert!(ada.view().is_sound(), "{:?}", ada.view());
    game.shutdown().await;
}

#[tokio::test]
async fn snapshot_ticks_never_go_backwards_and_events_arrive_once_in_order() {
    let game = start(Settings::default()).await;
    let mut watcher = join(&game, "watcher").await;
    let bots = tokio::spawn(game::bots(
        Tokio,
        game.local_addr(),
        BotSettings {
            count: 3,
            duration: Duration::from_secs(2),
            ..BotSettings::default()
        },
    ));
    let mut ticks = Vec::new();
    let mut seqs = Vec::new();
    let end = Instant::now() + Duration::from_millis(2500);
    while let Ok(update) = tokio::time::timeout_at(end, watcher.next()).await {
        match update
            .expect("the connection holds")
            .expect("the game goes on")
        {
            Update::Snapshot(snapshot) => ticks.push(snapshot.tick),
            Update::Event(event) => seqs.push(event.seq),
        }
    }
    let summary = bots.await.expect("the bots ran").expect("the bots played");
    assert!(ticks.len() > 30, "{} snapshots", ticks.len());
    assert!(
        ticks.windows(2).all(|w| w[0] < w[1]),
        "ticks went backwards: {ticks:?}"
    );
    // Its own join, three bots joining and leaving, and whatever was scored.
    assert!(seqs.len() >= 7, "{seqs:?}");
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert!(summary.is_sound(), "{summary}");
    assert_eq!(summary.bots.len(), 3);
    for bot in &summary.bots {
        assert!(bot.view.snapshots > 10 && bot.view.events >= 1, "{bot:?}");
        assert!(!bot.lags.is_empty() && bot.rtt.is_some(), "{bot:?}");
    }
    let line = summary.to_string();
    assert!(line.starts_with("3 bots, 2.0 s: rtt "), "{line}");
    assert!(
        line.contains("(0 lost, 0 repeated, 0 stale snapshots)"),
        "{line}"
    );
    game.shutdown().await;
}

#[tokio::test]
async fn a_full_game_refuses_a_player_and_says_why() {
    let game = start(Settings {
        max_players: 1,
        ..Settings::default()
    })
    .await;
    let _seated = join(&game, "first").await;
    let refused = Player::connect(Tokio, game.local_addr(), "second", ClientConfig::default())
        .await
        .expect_err("the game is full");
    let text = format!("{refused:#}");
    assert!(
        text.contains(
            "refused to seat second: RESOURCE_EXHAUSTED: the game is full (1 of 1 players)"
        ),
        "{text}"
    );
    assert_eq!(game.players(), 1);
    game.shutdown().await;
}

#[tokio::test]
async fn a_client_of_another_version_is_refused_and_told_why() {
    let game = start(Settings::default()).await;
    let client = Client::connect(
        Tokio,
        Transport::Udp,
        game.local_addr(),
        ClientConfig::default(),
    )
    .await
    .expect("the transport connects");
    let refused = Player::join_as_version(client, "old", 99)
        .await
        .expect_err("another version");
    let text = format!("{refused:#}");
    assert!(
        text.contains(
            "FAILED_PRECONDITION: this server speaks game protocol version 1, the client version 99"
        ),
        "{text}"
    );
    assert_eq!(game.players(), 0);
    game.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_never_joins_is_closed_so_it_holds_no_seat() {
    let game = start(Settings {
        join_timeout: Duration::from_millis(300),
        ..Settings::default()
    })
    .await;
    let client = Client::connect(
        Tokio,
        Transport::Udp,
        game.local_addr(),
        ClientConfig::default(),
    )
    .await
    .expect("the transport connects");
    let connection = client.connection().await.expect("connected");
    let closed = timeout(PATIENCE, connection.closed()).await;
    assert!(closed.is_ok(), "the server closed the idle connection");
    client.close();
    game.shutdown().await;
}
