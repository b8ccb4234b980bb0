//! The README tutorial's step 3, as written there (inside a test instead of
//! `main`, run once per transport), so it stays true.

use greeter::pb;
use pb::{
    Greeter, GreeterClient, GreeterServer, HelloReply, HelloRequest, Notice, VisitReply,
    VisitRequest,
};
use protowright::net::Tokio;
use protowright::rpc::Status;
use protowright::{Client, ClientConfig, Protocol, Server, ServerConfig, Transport};

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

async fn tutorial(transport: Transport) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    // In memory, for tests: the real protocol over a pipe, no sockets.
    let greeter = GreeterClient::in_memory(Host);
    lines.push(
        greeter
            .say_hello(HelloRequest {
                name: "Ada".into(),
                ..Default::default()
            })
            .await?
            .message,
    );

    // A server: each connection is served by the generated dispatcher, and
    // greeted with a pushed message.
    let mut server = Server::bind(
        Tokio,
        transport,
        "127.0.0.1:0".parse()?,
        ServerConfig::default(),
    )
    .await?;
    let addr = server.local_addr();
    let shutdown = server.handle();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let connection = incoming.serve(GreeterServer::new(Host));
            let _ = connection
                .send(Notice {
                    text: "welcome".into(),
                })
                .await;
        }
    });

    // A client that reconnects and retries by itself: calls and messages.
    let client = Client::connect(Tokio, transport, addr, ClientConfig::default()).await?;
    let greeter = GreeterClient::new(client.clone());
    lines.push(
        greeter
            .say_hello(HelloRequest {
                name: "Grace".into(),
                ..Default::default()
            })
            .await?
            .message,
    );
    if let Some(push) = client.recv::<pb::Push>().await? {
        match push.into_kind() {
            Some(pb::push::Kind::Notice(notice)) => lines.push(format!("notice: {}", notice.text)),
            Some(pb::push::Kind::Wave(wave)) => lines.push(format!("{} waves", wave.from)),
            None => {}
        }
    }
    client.close();
    shutdown.shutdown().await; // graceful: calls in flight finish first
    Ok(lines)
}

#[tokio::test]
async fn the_tutorial_runs_over_tcp() {
    let lines = tutorial(Transport::Tcp).await.unwrap();
    assert_eq!(lines, ["Hello, Ada!", "Hello, Grace!", "notice: welcome"]);
}

#[tokio::test]
async fn the_tutorial_runs_over_reliable_udp() {
    let lines = tutorial(Transport::Udp).await.unwrap();
    assert_eq!(lines, ["Hello, Ada!", "Hello, Grace!", "notice: welcome"]);
}
