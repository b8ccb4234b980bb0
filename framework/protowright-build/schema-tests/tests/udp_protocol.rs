//! A protocol from the schema, with all four deliveries, over reliable UDP:
//! on loopback and inside a turmoil simulation, with the same code. Each
//! member message travels on the delivery and channel its options give it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use protowright::net::{Net, Tokio};
use protowright::udp::{Config, Connection, Endpoint, Lane};
use protowright_schema_tests::showcase::{common, game};
use protowright_sim::Turmoil;

const PORT: u16 = 9400;

/// What the receiving side saw: each message's kind and its lane.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    snapshots: Vec<u32>,
    sounds: Vec<u32>,
    chats: Vec<String>,
    loot: Vec<u64>,
    lanes: Vec<(Lane, u32)>,
}

async fn play(connection: &Connection) -> Result<(), protowright::udp::Error> {
    for tick in 0..30u32 {
        connection
            .send_protocol::<game::Packet, _>(game::Snapshot {
                tick,
                players: Vec::new(),
            })
            .await?;
        connection
            .send_protocol::<game::Packet, _>(game::Sound { effect: tick })
            .await?;
        if tick % 3 == 0 {
            connection
                .send_protocol::<game::Packet, _>(game::Chat {
                    text: format!("line {tick}"),
                })
                .await?;
            connection
                .send_protocol::<game::Packet, _>(game::Loot {
                    item: Some(common::Id { value: tick.into() }),
                })
                .await?;
        }
    }
    connection.close(0, "game over");
    let _ = connection.closed().await;
    Ok(())
}

async fn watch(connection: &Connection) -> Seen {
    let mut seen = Seen::default();
    while let Ok(message) = connection.recv().await {
        seen.lanes.push((message.lane, message.channel));
        let packet = <game::Packet as prost::Message>::decode(message.data).expect("a game packet");
        match protowright::Protocol::into_kind(packet) {
            Some(game::packet::Body::Snapshot(s)) => seen.snapshots.push(s.tick),
            Some(game::packet::Body::Sound(s)) => seen.sounds.push(s.effect),
            Some(game::packet::Body::Chat(c)) => seen.chats.push(c.text),
            Some(game::packet::Body::Loot(l)) => seen.loot.push(l.item.map_or(0, |i| i.value)),
            other => panic!("unexpected {other:?}"),
        }
    }
    seen.loot.sort_unstable();
    seen
}

fn check(seen: &Seen) {
    // Reliable ordered chat on channel 2: all of it, in order.
    let chats: Vec<String> = (0..30).step_by(3).map(|t| format!("line {t}")).collect();
    assert_eq!(seen.chats, chats);
    // Reliable unordered loot: all of it.
    let loot: Vec<u64> = (0..30).step_by(3).collect();
    assert_eq!(seen.loot, loot);
    // Sequenced snapshots on channel 1: never backwards.
    assert!(
        seen.snapshots.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        seen.snapshots
    );
    // Unreliable sounds: at most once each.
    let mut sounds = seen.sounds.clone();
    sounds.dedup();
    assert_eq!(sounds.len(), seen.sounds.len());
    // Each kind on the lane and channel its schema options give.
    for lane in &seen.lanes {
        assert!(
            [
                (Lane::UnreliableSequenced, 1),
                (Lane::Unreliable, 0),
                (Lane::ReliableOrdered, 2),
                (Lane::ReliableUnordered, 0),
            ]
            .contains(lane),
            "{lane:?}"
        );
    }
}

async fn server<N: Net>(net: N, addr: SocketAddr) -> Result<Seen, protowright::udp::Error> {
    let endpoint = Endpoint::server(&net, addr, Config::default()).await?;
    let connection = endpoint.accept().await.expect("a player");
    Ok(watch(&connection).await)
}

async fn client<N: Net>(net: N, server: SocketAddr) -> Result<(), protowright::udp::Error> {
    let endpoint = Endpoint::client(
        &net,
        (Ipv4Addr::UNSPECIFIED, PORT + 1).into(),
        Config::default(),
    )
    .await?;
    let connection = endpoint.connect(server).await?;
    play(&connection).await
}

#[tokio::test]
async fn the_game_protocol_runs_over_reliable_udp_on_loopback() {
    let endpoint = Endpoint::server(&Tokio, (Ipv4Addr::LOCALHOST, 0).into(), Config::default())
        .await
        .expect("server");
    let addr = endpoint.local_addr();
    let watcher = tokio::spawn(async move {
        let connection = endpoint.accept().await.expect("a player");
        watch(&connection).await
    });
    let client_endpoint =
        Endpoint::client(&Tokio, (Ipv4Addr::LOCALHOST, 0).into(), Config::default())
            .await
            .expect("client");
    let connection = client_endpoint.connect(addr).await.expect("connect");
    play(&connection).await.expect("play");
    let seen = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("in time")
        .expect("watcher");
    check(&seen);
    // No loss on loopback: everything arrived.
    assert_eq!(seen.sounds.len(), 30);
}

#[test]
fn the_game_protocol_runs_over_reliable_udp_in_a_simulation() {
    let mut sim = turmoil::Builder::new()
        .rng_seed(11)
        .min_message_latency(Duration::from_millis(2))
        .max_message_latency(Duration::from_millis(40))
        .build();
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.host("server", move || {
        let sender = sender.clone();
        async move {
            let seen = server(Turmoil, (Ipv4Addr::UNSPECIFIED, PORT).into())
                .await
                .map_err(|e| e.to_string())?;
            let _ = sender.send(seen);
            Ok(())
        }
    });
    sim.client("client", async {
        client(Turmoil, (turmoil::lookup("server"), PORT).into()).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    });
    sim.run().expect("simulation");
    let seen = receiver.recv().expect("the server's view");
    check(&seen);
    assert!(!seen.snapshots.is_empty());
}
