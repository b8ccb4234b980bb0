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

#[test]
fn a_channel_a_connection_does_not_have_is_refused_at_the_option() {
    let message = error_for(
        "channel.proto",
        r#"syntax = "proto3";
package demo;
import "protowright/v1/options.proto";

message Chat {
  option (protowright.v1.channel) = 300;
  string text = 1;
}
"#,
    );
    assert_eq!(
        message,
        "$DIR/channel.proto:6:3: `demo.Chat` is on channel 300, beyond the 256 channels a \
         connection has (0-255); pick a channel below 256\n      \
         option (protowright.v1.channel) = 300;\n      ^"
    );
}

#[test]
fn the_last_channel_is_accepted_and_the_next_refused() {
    let last = "syntax = \"proto3\";\npackage demo;\nimport \"protowright/v1/options.proto\";\nmessage Chat {\n  option (protowright.v1.channel) = 255;\n}\n";
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("last.proto"), last).expect("write schema");
    protowright_build::configure()
        .out_dir(dir.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[dir.path().join("last.proto")], &[dir.path()])
        .expect("channel 255 is the last a connection has");

    let message = error_for("next.proto", &last.replace("255", "256"));
    assert!(
        message.contains("channel 256, beyond the 256 channels"),
        "{message}"
    );
}

#[test]
fn an_option_used_without_its_import_says_which_import_to_add() {
    let message = error_for(
        "no_import.proto",
        r#"syntax = "proto3";
package demo;

message Snapshot {
  option (protowright.v1.delivery) = UNRELIABLE_SEQUENCED;
  uint32 tick = 1;
}
"#,
    );
    assert_eq!(
        message,
        "$DIR/no_import.proto:5:3: name 'protowright.v1.delivery' is not defined (help: add \
         import \"protowright/v1/options.proto\"; to the schema (protowright-build serves it: \
         no include path needed))\n      \
         option (protowright.v1.delivery) = UNRELIABLE_SEQUENCED;\n      ^ found here"
    );
}

#[test]
fn a_misspelt_protowright_option_lists_the_options_there_are() {
    let message = error_for(
        "typo.proto",
        r#"syntax = "proto3";
package demo;
import "protowright/v1/options.proto";

message Snapshot {
  option (protowright.v1.deliver) = UNRELIABLE;
}
"#,
    );
    assert_eq!(
        message,
        "$DIR/typo.proto:6:3: 'protowright.v1.deliver' resolves to 'protowright.v1.deliver', \
         which is not defined (help: protowright.v1 has no such name; its options are \
         `delivery`, `channel`, `max_size` and `protocol` on messages and `method_id` on \
         methods)\n      option (protowright.v1.deliver) = UNRELIABLE;\n      ^ found here"
    );
}

#[test]
fn a_schema_that_does_not_exist_is_named_with_the_include_paths_searched() {
    let error = protowright_build::configure()
        .emit_rerun_if_changed(false)
        .compile_protos(
            &["tests/protos/missing.proto"],
            &["tests/protos", "../../proto"],
        )
        .expect_err("the schema does not exist");
    let cwd = std::env::current_dir().expect("a working directory");
    let message = error
        .to_string()
        .replace(&cwd.display().to_string(), "$CWD");
    assert_eq!(
        message,
        "schema `tests/protos/missing.proto` does not exist: no such file, and no \
         `missing.proto` under the include paths searched: `tests/protos`, `../../proto` \
         (paths relative to `$CWD`)"
    );
}

#[test]
fn a_schema_outside_every_include_path_says_so() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("orphan.proto");
    std::fs::write(&path, "syntax = \"proto3\";\npackage demo;\n").expect("write schema");
    let error = protowright_build::configure()
        .out_dir(dir.path())
        .emit_rerun_if_changed(false)
        .compile_protos(&[&path], &["tests/protos"])
        .expect_err("the schema is outside the include paths");
    let cwd = std::env::current_dir().expect("a working directory");
    let message = error
        .to_string()
        .replace(&cwd.display().to_string(), "$CWD")
        .replace(&dir.path().display().to_string(), "$DIR");
    assert_eq!(
        message,
        "schema `$DIR/orphan.proto` is not under any include path, so its imports cannot be \
         resolved; add its directory to the include paths (now: `tests/protos`) (paths \
         relative to `$CWD`)"
    );
}

#[test]
fn a_protowright_type_used_without_its_import_names_the_file_defining_it() {
    let message = error_for(
        "no_rpc_import.proto",
        "syntax = \"proto3\";\npackage demo;\nmessage Log {\n  repeated protowright.v1.Envelope frames = 1;\n}\n",
    );
    assert!(
        message.starts_with(
            "$DIR/no_rpc_import.proto:4:12: name 'protowright.v1.Envelope' is not defined \
             (help: add import \"protowright/v1/rpc.proto\";"
        ),
        "{message}"
    );
}
