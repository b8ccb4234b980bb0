fn main() -> Result<(), protowright_build::Error> {
    protowright_build::configure().compile_protos(&["proto/greeter/v1/greeter.proto"], &["proto"])
}
