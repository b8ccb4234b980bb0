//! Delivery settings from the schema become constants, and a protocol root
//! gets `From` conversions and a way to match on what arrived.

use prost::Message;
use protowright::{Delivery, MessageInfo, Protocol};
use protowright_schema_tests::showcase::{common, game, inventory};

#[test]
fn delivery_options_become_constants() {
    assert_eq!(game::Snapshot::DELIVERY, Delivery::UnreliableSequenced);
    assert_eq!(game::Snapshot::CHANNEL, 1);
    assert_eq!(game::Sound::DELIVERY, Delivery::Unreliable);
    assert_eq!(game::Loot::DELIVERY, Delivery::ReliableUnordered);
    assert_eq!(game::Chat::DELIVERY, Delivery::ReliableOrdered);
    assert_eq!(game::Chat::CHANNEL, 2);
    assert_eq!(game::Chat::MAX_SIZE, Some(512));
    assert_eq!(game::Snapshot::MAX_SIZE, None);
}

#[test]
fn messages_without_options_are_reliable_ordered_on_channel_zero() {
    assert_eq!(inventory::Item::DELIVERY, Delivery::ReliableOrdered);
    assert_eq!(inventory::Item::CHANNEL, 0);
    assert_eq!(inventory::Item::NAME, "showcase.inventory.Item");
    assert_eq!(
        inventory::item::Weapon::NAME,
        "showcase.inventory.Item.Weapon"
    );
}

#[test]
fn every_protocol_message_converts_into_the_root() {
    let chat: game::Packet = game::Chat { text: "gg".into() }.into();
    let ack = game::Packet::from(common::Id { value: 9 });
    assert_eq!(chat.kind_name(), Some("showcase.game.Chat"));
    assert_eq!(ack.kind_name(), Some("showcase.common.Id"));
    assert_eq!(game::Packet::default().kind_name(), None);
}

#[test]
fn a_received_root_can_be_matched_on() {
    let sent = game::Packet::from(game::Sound { effect: 4 });
    let wire = sent.encode_to_vec();
    let received = game::Packet::decode(wire.as_slice()).expect("decodes");
    let effect = match received.into_kind() {
        Some(game::packet::Body::Sound(sound)) => sound.effect,
        other => panic!("expected a sound, got {other:?}"),
    };
    assert_eq!(effect, 4);
}

#[test]
fn the_root_lists_its_messages_in_field_order() {
    assert_eq!(
        game::Packet::MESSAGES,
        &[
            "showcase.game.Snapshot",
            "showcase.game.Sound",
            "showcase.game.Chat",
            "showcase.game.Loot",
            "showcase.common.Id",
        ]
    );
}

#[test]
fn the_written_descriptor_set_keeps_the_options_for_reflection() {
    // What protowright-build reads is in the schema itself: a tool loading
    // the descriptor set the builder wrote sees the same settings.
    let pool = prost_reflect::DescriptorPool::decode(written_descriptor_set().as_slice())
        .expect("descriptors decode");
    let snapshot = pool
        .get_message_by_name("showcase.game.Snapshot")
        .expect("message");
    let ext = pool
        .get_extension_by_name("protowright.v1.delivery")
        .expect("extension");
    let value = snapshot.options().get_extension(&ext).into_owned();
    assert_eq!(
        value,
        prost_reflect::Value::EnumNumber(Delivery::UnreliableSequenced as i32)
    );
}

/// Compiles the game schema with `file_descriptor_set_path` and returns the
/// bytes written there.
fn written_descriptor_set() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../proto");
    let out = std::env::temp_dir().join(format!("protowright-schema-tests-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("scratch dir");
    let set_path = out.join("set.bin");
    protowright_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .file_descriptor_set_path(&set_path)
        .compile_protos(&[dir.join("showcase/game.proto")], &[dir])
        .expect("the game schema compiles");
    let bytes = std::fs::read(&set_path).expect("descriptor set written");
    let _ = std::fs::remove_dir_all(&out);
    bytes
}

#[test]
fn prost_build_options_set_through_the_builder_apply() {
    // build.rs adds `#[derive(PartialOrd)]` to Chat through `prost_config()`.
    assert!(game::Chat { text: "a".into() } < game::Chat { text: "b".into() });
}
