//! A schema that cannot compile fails the build with `file:line:column` and
//! the cause, readable by a person.

use protowright_build::Error;

/// Writes `source` as `name` into a fresh directory, compiles it, and
/// returns the error's text with that directory's path replaced by `$DIR`.
fn error_for(name: &str, source: &str) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(name);
    std::fs::write(&path, source).expect("write schema");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("create out dir");
    let error: Error = protowright_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile_protos(&[&path], &[dir.path()])
        .expect_err("the schema should be rejected");
    // A build script prints its error with `Debug`: it must read the same.
    assert_eq!(format!("{error:?}"), error.to_string());
    error
        .to_string()
        .replace(&dir.path().display().to_string(), "$DIR")
}

#[test]
fn a_syntax_error_names_file_line_column_and_cause() {
    let message = error_for(
        "bad_syntax.proto",
        "syntax = \"proto3\";\npackage demo;\n\nmessage Broken {\n  int32 id = ;\n}\n",
    );
    assert_eq!(
        message,
        "$DIR/bad_syntax.proto:5:14: expected an integer, but found ';'\n      int32 id = ;\n                 ^ found here"
    );
}

#[test]
fn an_unknown_type_names_the_type_where_it_is_used() {
    let message = error_for(
        "unknown_type.proto",
        "syntax = \"proto3\";\npackage demo;\n\nmessage Order {\n  Customer customer = 1;\n}\n",
    );
    assert!(
        message.starts_with("$DIR/unknown_type.proto:5:3: name 'Customer' is not defined"),
        "{message}"
    );
}

#[test]
fn a_missing_import_names_the_import_and_the_importing_line() {
    let message = error_for(
        "missing_import.proto",
        "syntax = \"proto3\";\npackage demo;\n\nimport \"shared/ids.proto\";\n\nmessage Order {}\n",
    );
    assert!(
        message.starts_with("$DIR/missing_import.proto:4:1: import 'shared/ids.proto' not found"),
        "{message}"
    );
}

#[test]
fn a_duplicate_method_id_names_both_methods_and_the_fix() {
    let message = error_for(
        "duplicate_id.proto",
        r#"syntax = "proto3";
package demo;

import "protowright/v1/options.proto";

message Empty {}

service Lobby {
  rpc Join(Empty) returns (Empty) {
    option (protowright.v1.method_id) = 7;
  }
  rpc Leave(Empty) returns (Empty) {
    option (protowright.v1.method_id) = 7;
  }
}
"#,
    );
    assert_eq!(
        message,
        "$DIR/duplicate_id.proto:12:3: method `demo.Lobby.Leave` has wire id 0x00000007, which \
         `demo.Lobby.Join` ($DIR/duplicate_id.proto:9:3) already has; pin a distinct id with \
         `option (protowright.v1.method_id) = N;`"
    );
}

#[test]
fn a_pinned_id_equal_to_a_derived_one_is_a_duplicate_too() {
    // FNV-1a of "/demo.Lobby/Join" is 0x59b0178c.
    let message = error_for(
        "pinned_clash.proto",
        r#"syntax = "proto3";
package demo;
import "protowright/v1/options.proto";
message Empty {}
service Lobby {
  rpc Join(Empty) returns (Empty);
  rpc Leave(Empty) returns (Empty) { option (protowright.v1.method_id) = 0x59b0178c; }
}
"#,
    );
    assert!(
        message.contains("`demo.Lobby.Leave` has wire id 0x59b0178c"),
        "{message}"
    );
}

#[test]
fn a_streaming_method_is_refused_with_what_to_do_instead() {
    let message = error_for(
        "streaming.proto",
        "syntax = \"proto3\";\npackage demo;\nmessage Tick {}\nservice Clock {\n  rpc Watch(Tick) returns (stream Tick);\n}\n",
    );
    assert!(
        message.starts_with("$DIR/streaming.proto:5:3: `demo.Clock.Watch` is a streaming method"),
        "{message}"
    );
    assert!(message.contains("protocol root"), "{message}");
}

#[test]
fn a_protocol_root_without_a_oneof_is_refused() {
    let message = error_for(
        "root.proto",
        "syntax = \"proto3\";\npackage demo;\nimport \"protowright/v1/options.proto\";\nmessage Packet {\n  option (protowright.v1.protocol) = true;\n  uint32 seq = 1;\n}\n",
    );
    assert!(
        message.starts_with(
            "$DIR/root.proto:4:1: protocol root `demo.Packet` must have exactly one `oneof`"
        ),
        "{message}"
    );
}

#[test]
fn a_protocol_message_listed_twice_is_refused() {
    let message = error_for(
        "twice.proto",
        "syntax = \"proto3\";\npackage demo;\nimport \"protowright/v1/options.proto\";\nmessage Ping {}\nmessage Packet {\n  option (protowright.v1.protocol) = true;\n  oneof kind {\n    Ping first = 1;\n    Ping second = 2;\n  }\n}\n",
    );
    assert!(
        message.contains("`demo.Ping` appears in both `first` and `second`"),
        "{message}"
    );
}
