//! `Outgoing`: a protocol message knows its protocol and its route, so a
//! connection sends it without being told the root. Every impl here is
//! generated from the showcase schemas; none is written by hand.

use std::marker::PhantomData;

use prost::Message;
use protowright::{Delivery, Outgoing, Protocol, Route};
use protowright_schema_tests::showcase::{common, game, lobby};

/// Whether a type implements `Outgoing`, asked without failing to compile
/// when it does not (autoref specialisation: the `Outgoing` impl is found
/// one auto-reference earlier than the fallback).
struct Probe<T>(PhantomData<T>);

trait IsOutgoing {
    fn is_outgoing(&self) -> bool {
        true
    }
}
impl<T: Outgoing> IsOutgoing for Probe<T> {}

trait NotOutgoing {
    fn is_outgoing(&self) -> bool {
        false
    }
}
impl<T> NotOutgoing for &Probe<T> {}

macro_rules! is_outgoing {
    ($ty:ty) => {
        (&Probe::<$ty>(PhantomData)).is_outgoing()
    };
}

/// Compiles only when `M` is sent as protocol `P`.
fn sent_as<P: Protocol, M: Outgoing<Protocol = P>>(_: &M) {}

fn route(name: &'static str, delivery: Delivery, channel: u32, max_size: Option<u32>) -> Route {
    Route {
        name,
        delivery,
        channel,
        max_size,
    }
}

#[test]
fn each_protocol_message_routes_by_its_schema_options() {
    let snapshot = game::Snapshot {
        tick: 1,
        players: Vec::new(),
    };
    let cases = [
        (
            snapshot.route(),
            route(
                "showcase.game.Snapshot",
                Delivery::UnreliableSequenced,
                1,
                None,
            ),
        ),
        (
            game::Sound { effect: 2 }.route(),
            route("showcase.game.Sound", Delivery::Unreliable, 0, None),
        ),
        (
            game::Chat { text: "gg".into() }.route(),
            route(
                "showcase.game.Chat",
                Delivery::ReliableOrdered,
                2,
                Some(512),
            ),
        ),
        (
            game::Loot { item: None }.route(),
            route("showcase.game.Loot", Delivery::ReliableUnordered, 0, None),
        ),
        (
            common::Id { value: 3 }.route(),
            route("showcase.common.Id", Delivery::ReliableOrdered, 0, None),
        ),
        (
            lobby::Join { room: "a".into() }.route(),
            route("showcase.lobby.Join", Delivery::ReliableOrdered, 0, None),
        ),
        (
            lobby::Roster { names: Vec::new() }.route(),
            route(
                "showcase.lobby.Roster",
                Delivery::ReliableUnordered,
                0,
                None,
            ),
        ),
    ];
    for (generated, schema) in cases {
        assert_eq!(generated, schema);
    }
}

#[test]
fn a_message_listed_in_one_root_is_sent_as_that_protocol() {
    sent_as::<game::Packet, _>(&game::Sound { effect: 1 });
    // A message from another package is sent as the protocol that lists it.
    sent_as::<game::Packet, _>(&common::Id { value: 1 });
    sent_as::<lobby::ClientPacket, _>(&lobby::Join { room: "a".into() });
    sent_as::<lobby::ServerPacket, _>(&lobby::Roster { names: Vec::new() });
}

#[test]
fn a_root_is_its_own_protocol_even_inside_another_root() {
    // `game::Packet` is listed in `lobby::ServerPacket`, yet keeps its own
    // impl: a game packet is sent as the game protocol.
    sent_as::<game::Packet, _>(&game::Packet::default());
    sent_as::<lobby::ServerPacket, _>(&lobby::ServerPacket::default());
    let packet = game::Packet::from(game::Sound { effect: 1 });
    assert_eq!(packet.clone().into_root(), packet);
}

#[test]
fn a_root_routes_by_the_message_it_holds() {
    let chat = game::Packet::from(game::Chat { text: "gg".into() });
    assert_eq!(chat.route(), Route::of::<game::Chat>());
    let snapshot = game::Packet::from(game::Snapshot {
        tick: 1,
        players: Vec::new(),
    });
    assert_eq!(snapshot.route().delivery, Delivery::UnreliableSequenced);
    assert_eq!(snapshot.route().channel, 1);
    let nested = lobby::ServerPacket::from(chat);
    assert_eq!(nested.route(), Route::of::<game::Packet>());
}

#[test]
fn a_root_holding_nothing_routes_as_itself() {
    assert_eq!(
        game::Packet::default().route(),
        route("showcase.game.Packet", Delivery::ReliableOrdered, 0, None)
    );
}

#[test]
fn a_root_holding_a_type_from_elsewhere_routes_by_that_types_schema() {
    // `google.protobuf.Timestamp` is prost_types' type, which implements no
    // protowright trait: its route is written out from its schema (no options).
    let clock = lobby::ClientPacket::from(prost_types::Timestamp {
        seconds: 1,
        nanos: 0,
    });
    assert_eq!(
        clock.route(),
        route(
            "google.protobuf.Timestamp",
            Delivery::ReliableOrdered,
            0,
            None
        )
    );
}

#[test]
fn into_root_wraps_the_message_and_survives_the_wire() {
    let chat = game::Chat { text: "gg".into() };
    let root: game::Packet = chat.clone().into_root();
    let decoded = game::Packet::decode(root.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(
        decoded.into_kind(),
        Some(game::packet::Body::Chat(chat.clone()))
    );
    assert_eq!(game::Packet::from(chat.clone()), chat.into_root());

    // A root with a field beside its oneof gets the field's default.
    let roster = lobby::Roster {
        names: vec!["ada".into()],
    };
    let root = roster.clone().into_root();
    assert_eq!(root.sequence, 0);
    assert_eq!(root.kind_name(), Some("showcase.lobby.Roster"));
    assert_eq!(
        root.into_kind(),
        Some(lobby::server_packet::Body::Roster(roster))
    );
}

#[test]
fn a_message_listed_in_two_roots_or_not_generated_here_is_not_outgoing() {
    assert!(is_outgoing!(game::Chat));
    assert!(is_outgoing!(lobby::Join));
    assert!(is_outgoing!(lobby::ClientPacket));
    // Listed in both lobby roots: wrap it in the one it is meant for.
    assert!(!is_outgoing!(lobby::Notice));
    // prost_types' type: the orphan rule forbids the impl.
    assert!(!is_outgoing!(prost_types::Timestamp));
    // In no root at all.
    assert!(!is_outgoing!(game::PlayerPosition));

    // Wrapped, it still travels on its own route.
    let notice = lobby::Notice { text: "hi".into() };
    let expected = route(
        "showcase.lobby.Notice",
        Delivery::ReliableOrdered,
        3,
        Some(256),
    );
    assert_eq!(lobby::ClientPacket::from(notice.clone()).route(), expected);
    assert_eq!(lobby::ServerPacket::from(notice).route(), expected);
}

#[test]
fn the_generated_docs_say_why_a_shared_message_is_not_outgoing() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/showcase.lobby.rs"));
    assert!(
        generated.contains(
            "/// `showcase.lobby.Notice` is listed in several protocol roots (`showcase.lobby.ClientPacket`, `showcase.lobby.ServerPacket`)"
        ),
        "{generated}"
    );
    assert!(!generated.contains("Outgoing for Notice"), "{generated}");
}

#[test]
fn the_build_and_the_runtime_agree_on_the_channel_count() {
    assert_eq!(protowright_build::MAX_CHANNELS, protowright::MAX_CHANNELS);
}
