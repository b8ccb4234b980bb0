//! Generates the chat's types, service trait, client and dispatcher, and
//! writes the compiled schemas (the chat's and protowright's envelope) as a
//! descriptor set for clients in other languages (the Python test reads it).

fn main() -> Result<(), protowright_build::Error> {
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    protowright_build::configure()
        .file_descriptor_set_path(format!("{out_dir}/chat.descriptors.bin"))
        .compile_protos(
            &[
                "../../proto/chat/v1/chat.proto",
                "../../proto/protowright/v1/rpc.proto",
            ],
            &["../../proto"],
        )
}
