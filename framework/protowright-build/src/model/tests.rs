//! Which protocol messages implement `Outgoing`, decided across every root
//! of a build.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Locator, Model, Sending};
use crate::compile::compile;
use crate::ident::ExternPaths;

/// Compiles `files` (name, source) from a scratch include path, mapping
/// `externs` (protobuf path, Rust path) the way the builder does.
fn read(files: &[(&str, &str)], externs: &[(&str, &str)]) -> Model {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, source) in files {
        std::fs::write(dir.path().join(name), source).expect("write schema");
    }
    let includes = vec![dir.path().to_path_buf()];
    let protos: Vec<PathBuf> = files.iter().map(|(name, _)| PathBuf::from(name)).collect();
    let compiled = compile(&protos, &includes).expect("the schemas compile");
    let mut paths = ExternPaths::default();
    paths.insert(".google.protobuf", "::prost_types");
    for (proto, rust) in externs {
        paths.insert(proto, rust);
    }
    let locator = Locator::new(&compiled.files, &includes);
    Model::read(&compiled.files, &compiled.pool, &locator, &paths).expect("the model reads")
}

/// `(root, member) -> sending` for every root of the model.
fn sending(model: &Model) -> BTreeMap<(String, String), Sending> {
    model
        .files
        .iter()
        .flat_map(|file| &file.roots)
        .flat_map(|root| {
            root.variants.iter().map(|variant| {
                (
                    (root.full_name.clone(), variant.proto_name.clone()),
                    variant.sending.clone(),
                )
            })
        })
        .collect()
}

fn key(root: &str, member: &str) -> (String, String) {
    (root.to_owned(), member.to_owned())
}

const LOBBY: &str = r#"syntax = "proto3";
package demo;
import "google/protobuf/empty.proto";
import "protowright/v1/options.proto";
message Join {}
message Roster {}
message Notice {}
message Client {
  option (protowright.v1.protocol) = true;
  oneof body { Join join = 1; Notice notice = 2; google.protobuf.Empty nothing = 3; }
}
message Server {
  option (protowright.v1.protocol) = true;
  oneof body { Roster roster = 1; Notice notice = 2; Client relayed = 3; }
}
"#;

#[test]
fn a_message_in_one_root_is_sent_as_it_and_one_in_two_roots_is_not() {
    let sending = sending(&read(&[("lobby.proto", LOBBY)], &[]));
    let both = Sending::Shared(vec!["demo.Client".to_owned(), "demo.Server".to_owned()]);
    assert_eq!(sending[&key("demo.Client", "demo.Join")], Sending::Direct);
    assert_eq!(sending[&key("demo.Server", "demo.Roster")], Sending::Direct);
    assert_eq!(sending[&key("demo.Client", "demo.Notice")], both);
    assert_eq!(sending[&key("demo.Server", "demo.Notice")], both);
}

#[test]
fn a_root_listed_in_another_root_stays_its_own_protocol() {
    let sending = sending(&read(&[("lobby.proto", LOBBY)], &[]));
    assert_eq!(sending[&key("demo.Server", "demo.Client")], Sending::Root);
}

#[test]
fn a_type_mapped_elsewhere_is_never_outgoing_here() {
    let model = read(
        &[("lobby.proto", LOBBY)],
        &[(".demo.Join", "::elsewhere::Join")],
    );
    let sending = sending(&model);
    assert_eq!(
        sending[&key("demo.Client", "google.protobuf.Empty")],
        Sending::Extern
    );
    assert_eq!(sending[&key("demo.Client", "demo.Join")], Sending::Extern);
    // Nor does it get `MessageInfo`: prost does not generate it, and the
    // orphan rule would refuse the impl.
    let names: Vec<&str> = model
        .files
        .iter()
        .flat_map(|file| &file.messages)
        .map(|message| message.route.name.as_str())
        .collect();
    assert!(!names.contains(&"demo.Join"), "{names:?}");
    assert!(names.contains(&"demo.Roster"), "{names:?}");
}

#[test]
fn only_roots_this_build_generates_make_a_message_shared() {
    // `other.Relay` lists `demo.Join` too, but its package is mapped to
    // another crate: only `demo.Client` of this build lists it.
    let other = r#"syntax = "proto3";
package other;
import "lobby.proto";
import "protowright/v1/options.proto";
message Relay {
  option (protowright.v1.protocol) = true;
  oneof body { demo.Join join = 1; }
}
"#;
    let model = read(
        &[("lobby.proto", LOBBY), ("other.proto", other)],
        &[(".other", "::other")],
    );
    let sending = sending(&model);
    assert_eq!(sending[&key("demo.Client", "demo.Join")], Sending::Direct);
    assert!(!sending.contains_key(&key("other.Relay", "demo.Join")));
}

#[test]
fn a_protocol_message_keeps_its_schema_route() {
    let game = r#"syntax = "proto3";
package game;
import "protowright/v1/options.proto";
message Snapshot {
  option (protowright.v1.delivery) = UNRELIABLE_SEQUENCED;
  option (protowright.v1.channel) = 255;
  option (protowright.v1.max_size) = 1200;
}
message Packet {
  option (protowright.v1.protocol) = true;
  oneof body { Snapshot snapshot = 1; }
}
"#;
    let model = read(&[("game.proto", game)], &[]);
    let root = &model.files.last().expect("a file").roots[0];
    let route = &root.variants[0].route;
    assert_eq!(
        (
            route.name.as_str(),
            route.delivery,
            route.channel,
            route.max_size
        ),
        ("game.Snapshot", "UnreliableSequenced", 255, 1200)
    );
}
