//! Compiles the test schema the way a user's build script would.

fn main() -> Result<(), protowright_build::Error> {
    protowright_build::configure()
        .bytes(["."])
        .compile_protos(&["../../proto/testing/v1/testing.proto"], &["../../proto"])
}
