//! The README tutorial's step 3, compiled by `cargo test` so it stays true.
//! (The README includes the generated module itself; here it comes from the
//! greeter crate, built from the same schema.)

use greeter::pb::{Greeter, GreeterClient, GreeterServer, HelloReply, HelloRequest};
use protowright::rpc::Status;

struct Host;

impl Greeter for Host {
    async fn say_hello(&self, request: HelloRequest) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("Hello, {}!", request.name),
        })
    }

    async fn visit(
        &self,
        _request: greeter::pb::VisitRequest,
    ) -> Result<greeter::pb::VisitReply, Status> {
        Ok(greeter::pb::VisitReply { visits: 1 })
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

    // Over a socket: any stream from `protowright::net` (real or simulated).
    use protowright::{
        net::{Net, Tokio},
        rpc::{Config, NoService, Session},
    };
    let listener = Tokio.listen("127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await?;
        Session::spawn(
            stream,
            peer.to_string(),
            GreeterServer::new(Host),
            Config::default(),
        )
        .closed()
        .await?;
        anyhow::Ok(())
    });
    let session = Session::spawn(
        Tokio.connect(addr).await?,
        addr.to_string(),
        NoService,
        Config::default(),
    );
    let client = GreeterClient::new(session.client());
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
    Ok(())
}
