//! The generated source for `Outgoing`: which messages get an impl, and the
//! note a message without one carries. (Whether the impls compile and behave
//! is tested in `protowright-schema-tests`, through the showcase schemas.)

/// Generates code for `source` (package `demo`, file `lobby.proto`) with
/// `.demo.Join` mapped elsewhere, and returns the generated `demo.rs`.
fn generated(source: &str) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("lobby.proto"), source).expect("write schema");
    protowright_build::configure()
        .out_dir(dir.path())
        .emit_rerun_if_changed(false)
        .extern_path(".demo.Join", "::elsewhere::Join")
        .compile_protos(&[dir.path().join("lobby.proto")], &[dir.path()])
        .expect("the schema compiles");
    std::fs::read_to_string(dir.path().join("demo.rs")).expect("demo.rs written")
}

#[test]
fn only_a_message_generated_here_and_listed_in_one_root_is_outgoing() {
    let source = generated(
        r#"syntax = "proto3";
package demo;
import "protowright/v1/options.proto";
message Join {}
message Roster {}
message Notice {}
message Client {
  option (protowright.v1.protocol) = true;
  oneof body { Join join = 1; Notice notice = 2; }
}
message Server {
  option (protowright.v1.protocol) = true;
  oneof body { Roster roster = 1; Notice notice = 2; }
}
"#,
    );
    let impls: Vec<&str> = source
        .lines()
        .filter(|line| line.starts_with("impl ::protowright::Outgoing for"))
        .collect();
    assert_eq!(
        impls,
        [
            "impl ::protowright::Outgoing for Client {",
            "impl ::protowright::Outgoing for Server {",
            "impl ::protowright::Outgoing for Roster {",
        ],
        "{source}"
    );
    // Both `From` impls of the shared message say why and what to do.
    let note = "/// `demo.Notice` is listed in several protocol roots (`demo.Client`, `demo.Server`), so it does not";
    assert_eq!(source.matches(note).count(), 2, "{source}");
    // The mapped message gets no trait impl at all but still converts.
    assert!(
        !source.contains("MessageInfo for ::elsewhere::Join"),
        "{source}"
    );
    assert!(
        source.contains("From<::elsewhere::Join> for Client"),
        "{source}"
    );
}
