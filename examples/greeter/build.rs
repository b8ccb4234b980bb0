//! Generates the greeter's types, service trait, client and dispatcher, and
//! writes the compiled schemas (the greeter's and protowright's envelope) as
//! a descriptor set for clients in other languages.

fn main() -> Result<(), protowright_build::Error> {
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    protowright_build::configure()
        .file_descriptor_set_path(format!("{out_dir}/greeter.descriptors.bin"))
        .compile_protos(
            &[
                "../../proto/greeter/v1/greeter.proto",
                "../../proto/protowright/v1/rpc.proto",
            ],
            &["../../proto"],
        )
}
