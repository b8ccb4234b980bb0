//! Generates the benchmark protocol: protowright's code for its own
//! contenders, and tonic's for the gRPC contender (from the same protox
//! compilation, so no `protoc` is needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    protowright_build::configure()
        .bytes([".bench.v1"])
        .compile_protos(&["../proto/bench/v1/bench.proto"], &["../proto"])?;
    let tonic_proto = "../proto/bench/v1/tonic_bench.proto";
    println!("cargo:rerun-if-changed={tonic_proto}");
    let descriptors = protox::compile([tonic_proto], ["../proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("tonic");
    std::fs::create_dir_all(&out)?;
    tonic_prost_build::configure()
        .out_dir(out)
        .bytes(".bench.tonic.v1")
        .compile_fds(descriptors)?;
    Ok(())
}
