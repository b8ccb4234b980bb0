//! The README tutorial's step 3, compiled by `cargo test` so it stays true.
//! (The README includes the generated module itself; here it comes from the
//! greeter crate, built from the same schema.)

use greeter::pb::{
    Greeter, GreeterClient, GreeterServer, HelloReply, HelloRequest, VisitReply, VisitRequest,
};
use protowright::net::Tokio;
use protowright::rpc::Status;
use protowright::tcp::{Client, ClientConfig, Server, ServerConfig};

struct Host;

impl Greeter for Host {
    async fn say_hello(&self, request: HelloRequest) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("Hello, {}!", request.name),
        })
    }

    async fn visit(&self, _request: VisitRequest) -> Result<VisitReply, Status> {
        Ok(VisitReply { visits: 1 })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // In memory, for tests: the real protocol over a pipe, no sockets.
    let client = GreeterClient::in_memory(Host);
    println!(
        "{}",
        client
            .say_hello(HelloRequest {
                name: "Ada".into(),
                ..Default::default()
            })
            .await?
            .message
    );

    // Over TCP: a server, and a client that reconnects and retries by itself.
    let server = Server::bind(
        Tokio,
        "127.0.0.1:0".parse()?,
        GreeterServer::new(Host),
        ServerConfig::default(),
    )
    .await?;
    let addr = server.local_addr();
    let shutdown = server.handle();
    tokio::spawn(server.run());
    let client = GreeterClient::new(Client::connect(Tokio, addr, ClientConfig::default())?);
    println!(
        "{}",
        client
            .say_hello(HelloRequest {
                name: "Grace".into(),
                ..Default::default()
            })
            .await?
            .message
    );
    shutdown.shutdown().await; // graceful: calls in flight finish first
    Ok(())
}
