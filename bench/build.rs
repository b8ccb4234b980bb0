//! Generates the benchmark protocol.

fn main() -> Result<(), protowright_build::Error> {
    protowright_build::configure()
        .bytes([".bench.v1"])
        .compile_protos(&["../proto/bench/v1/bench.proto"], &["../proto"])
}
