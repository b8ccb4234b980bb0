//! A protocol from the schema, with all four deliveries, over reliable UDP:
//! on loopback and inside a turmoil simulation, with the same code. Each
//! member message travels on the delivery and channel its options give it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use protowright::net::{Net, Tokio};
use protowright::udp::Lane;
use protowright::{Client, ClientConfig, Connection, Server, ServerConfig, Transport};
use protowright_schema_tests::showcase::{common, game};
use protowright_sim::Turmoil;

const PORT: u16 = 9400;

/// What the receiving side saw of each kind of message.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    snapshots: Vec<u32>,
    sounds: Vec<u32>,
    chats: Vec<String>,
    loot: Vec<u64>,
}

/// Sends the game's messages with no type annotation: each knows its
/// protocol and its route from the schema.
async fn play(connection: &Connection) -> Result<(), protowright::SendError> {
    for tick in 0..30u32 {
        connection
            .send(game::Snapshot {
                tick,
                players: Vec::new(),
            })
            .await?;
        connection.send(game::Sound { effect: tick }).await?;
        if tick % 3 == 0 {
            connection
                .send(game::Chat {
                    text: format!("line {tick}"),
                })
                .await?;
            connection
                .send(game::Loot {
                    item: Some(common::Id { value: tick.into() }),
                })
                .await?;
        }
    }
    connection.close();
    let _ = connection.closed().await;
    Ok(())
}

/// Reads the raw lanes, so each message's lane and channel can be held to
/// what its schema options say.
async fn watch(connection: &Connection) -> Seen {
    let raw = connection.udp().expect("a reliable-UDP connection");
    let mut seen = Seen::default();
    while let Ok(message) = raw.recv().await {
        let route = (message.lane, message.channel);
        let packet = <game::Packet as prost::Message>::decode(message.data).expect("a game packet");
        let expected = match protowright::Protocol::into_kind(packet) {
            Some(game::packet::Body::Snapshot(s)) => {
                seen.snapshots.push(s.tick);
                (Lane::UnreliableSequenced, 1)
            }
            Some(game::packet::Body::Sound(s)) => {
                seen.sounds.push(s.effect);
                (Lane::Unreliable, 0)
            }
            Some(game::packet::Body::Chat(c)) => {
                seen.chats.push(c.text);
                (Lane::ReliableOrdered, 2)
            }
            Some(game::packet::Body::Loot(l)) => {
                seen.loot.push(l.item.map_or(0, |i| i.value));
                (Lane::ReliableUnordered, 0)
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(route, expected, "each kind travels as its schema says");
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
    sounds.sort_unstable();
    sounds.dedup();
    assert_eq!(sounds.len(), seen.sounds.len(), "{:?}", seen.sounds);
}

async fn bind<N: Net>(net: N, addr: SocketAddr) -> Result<Server, protowright::Error> {
    Server::bind(net, Transport::Udp, addr, ServerConfig::default()).await
}

async fn server(mut server: Server) -> Seen {
    let player = server.accept().await.expect("a player");
    watch(&player.serve(protowright::rpc::NoService)).await
}

async fn client<N: Net>(net: N, server: SocketAddr) -> anyhow::Result<()> {
    let client = Client::connect(net, Transport::Udp, server, ClientConfig::default()).await?;
    play(&client.connection().await?).await?;
    Ok(())
}

#[tokio::test]
async fn the_game_protocol_runs_over_reliable_udp_on_loopback() {
    let listening = bind(Tokio, (Ipv4Addr::LOCALHOST, 0).into())
        .await
        .expect("server");
    let addr = listening.local_addr();
    let watcher = tokio::spawn(server(listening));
    client(Tokio, addr).await.expect("play");
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
    protowright_sim::reseed(11);
    let mut sim = turmoil::Builder::new()
        .rng_seed(11)
        .min_message_latency(Duration::from_millis(2))
        .max_message_latency(Duration::from_millis(40))
        .build();
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.host("server", move || {
        let sender = sender.clone();
        async move {
            let listening = bind(Turmoil, (Ipv4Addr::UNSPECIFIED, PORT).into()).await?;
            let _ = sender.send(server(listening).await);
            Ok(())
        }
    });
    sim.client("client", async {
        client(Turmoil, (turmoil::lookup("server"), PORT).into())
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    });
    sim.run().expect("simulation");
    let seen = receiver.recv().expect("the server's view");
    check(&seen);
    assert!(!seen.snapshots.is_empty());
}
