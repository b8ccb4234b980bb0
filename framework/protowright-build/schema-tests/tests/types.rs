//! The showcase schemas compile into working prost types: imports across
//! files and packages, nested types, oneof, map, repeated, proto3 optional,
//! proto2 defaults and required fields, well-known types, reserved fields,
//! and comments that become rustdoc.

use std::collections::BTreeMap;

use prost::Message;
use protowright_schema_tests::showcase::{common, inventory, legacy};

fn full_item() -> inventory::Item {
    inventory::Item {
        id: Some(common::Id { value: 7 }),
        name: "sword".into(),
        color: common::Color::Blue as i32,
        stack: Some(0),
        tags: vec!["sharp".into(), "old".into()],
        counters: [("kills".to_owned(), 12_i64)].into_iter().collect(),
        acquired_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        cooldown: Some(prost_types::Duration {
            seconds: 3,
            nanos: 0,
        }),
        extension: Some(prost_types::Any {
            type_url: "type.googleapis.com/showcase.common.Id".into(),
            value: common::Id { value: 1 }.encode_to_vec(),
        }),
        metadata: Some(prost_types::Struct {
            fields: [(
                "level".to_owned(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::NumberValue(3.0)),
                },
            )]
            .into_iter()
            .collect(),
        }),
        kind: Some(inventory::item::Kind::Weapon(inventory::item::Weapon {
            damage: 40,
            rarity: inventory::item::Rarity::Epic as i32,
        })),
    }
}

#[test]
fn a_message_using_every_proto3_feature_round_trips() {
    let item = full_item();
    let decoded = inventory::Item::decode(item.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(decoded, item);
}

#[test]
fn proto3_optional_distinguishes_zero_from_absent() {
    let explicit_zero = inventory::Item {
        stack: Some(0),
        ..Default::default()
    };
    let absent = inventory::Item::default();
    let zero_back =
        inventory::Item::decode(explicit_zero.encode_to_vec().as_slice()).expect("decodes");
    let absent_back = inventory::Item::decode(absent.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(zero_back.stack, Some(0));
    assert_eq!(absent_back.stack, None);
}

#[test]
fn nested_messages_imported_types_and_configured_maps_are_usable() {
    let inventory = inventory::Inventory {
        owner: Some(common::Id { value: 1 }),
        items: vec![full_item()],
        by_slot: BTreeMap::from([(3_u64, full_item())]),
        stash_location: Some(common::Vec3 {
            x: 1.0,
            y: 2.0,
            z: 3.0,
            unit: common::vec3::Unit::Tiles as i32,
        }),
    };
    let back = inventory::Inventory::decode(inventory.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(back, inventory);
}

#[test]
fn proto2_defaults_apply_when_fields_are_absent() {
    let header = legacy::SaveHeader::decode(&[0x08, 0x02][..]).expect("version only");
    assert_eq!(header.version, 2);
    assert_eq!(header.title(), "untitled");
    assert_eq!(header.slot(), -1);
    assert!(header.compressed());
    assert_eq!(header.platform(), legacy::save_header::Platform::Pc);
}

#[test]
fn a_proto2_required_field_is_always_encoded() {
    let header = legacy::SaveHeader {
        version: 0,
        ..Default::default()
    };
    // Even at its zero value, a required field is on the wire.
    assert_eq!(header.encode_to_vec(), vec![0x08, 0x00]);
}

#[test]
fn a_reserved_field_number_from_an_old_peer_is_skipped() {
    // Field 4 (reserved: it was `weight`) as a varint, then name = "a".
    let old_wire = [0x20, 0x05, 0x12, 0x01, b'a'];
    let item = inventory::Item::decode(&old_wire[..]).expect("unknown fields are skipped");
    assert_eq!(item.name, "a");
}

#[test]
fn schema_comments_become_rustdoc() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/showcase.inventory.rs"));
    assert!(
        generated.contains("/// One thing a player owns."),
        "message comment"
    );
    assert!(
        generated.contains("/// How many are stacked in one slot."),
        "field comment"
    );
    assert!(
        generated.contains("/// A weapon's statistics."),
        "nested message comment"
    );
}

#[test]
fn the_build_script_asked_to_rerun_when_any_schema_it_read_changes() {
    // Cargo keeps a build script's output beside its OUT_DIR.
    let output_path = concat!(env!("OUT_DIR"), "/../output");
    let output = std::fs::read_to_string(output_path).expect("build script output");
    for schema in ["common", "inventory", "legacy", "game", "lobby", "store"] {
        let line = format!("cargo:rerun-if-changed=../../../proto/showcase/{schema}.proto");
        assert!(
            output.lines().any(|l| l == line),
            "missing `{line}` in:\n{output}"
        );
    }
    // This crate's include path holds protowright's own schemas, so they
    // are read from disk and watched; Google's come from memory and are not.
    assert!(output.contains("cargo:rerun-if-changed=../../../proto/protowright/v1/options.proto"));
    assert!(!output.contains("google/protobuf"), "{output}");
}
