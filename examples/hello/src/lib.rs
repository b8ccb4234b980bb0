//! The greeter's types and its service, in the library so the binary and
//! the tests (`tests/`) share them.

pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/greeter.v1.rs"));
}

use pb::{Greeter, HelloReply, HelloRequest};
use protowright::rpc::Status;

pub struct Host;

impl Greeter for Host {
    async fn say_hello(&self, request: HelloRequest) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("Hello, {}!", request.name),
        })
    }
}
