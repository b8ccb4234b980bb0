//! Generates the file-share schema's types, service trait, client and
//! dispatcher. `bytes` fields become `bytes::Bytes`, so a chunk's data is
//! passed along without copying.

fn main() -> Result<(), protowright_build::Error> {
    protowright_build::configure().bytes(["."]).compile_protos(
        &["../../proto/file-share/v1/file-share.proto"],
        &["../../proto"],
    )
}
