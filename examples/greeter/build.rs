//! Generates the greeter's types, service trait, client and dispatcher.

fn main() -> Result<(), protowright_build::Error> {
    protowright_build::configure()
        .compile_protos(&["../../proto/greeter/v1/greeter.proto"], &["../../proto"])
}
