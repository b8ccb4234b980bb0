//! The greeter: a service described in `proto/greeter/v1/greeter.proto`,
//! implemented once, and run over real loopback sockets, in memory, and
//! inside a turmoil simulation without changing a line.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use protowright::net::Net;
use protowright::rpc::{Channel, Status};
use protowright::{Client, ClientConfig, Server, ServerConfig, ServerHandle, Transport};

/// The types and glue generated from `greeter.proto`.
pub mod pb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/greeter.v1.rs"));
}

use pb::{
    Greeter, GreeterClient, GreeterServer, HelloReply, HelloRequest, VisitReply, VisitRequest,
};

/// The service implementation.
#[derive(Debug, Default)]
pub struct Host {
    visits: AtomicU64,
}

impl Greeter for Host {
    async fn say_hello(&self, request: HelloRequest) -> Result<HelloReply, Status> {
        if request.name.is_empty() {
            return Err(Status::invalid_argument("a name is required to say hello"));
        }
        tokio::time::sleep(Duration::from_millis(request.think_millis.into())).await;
        Ok(HelloReply {
            message: format!("Hello, {}!", request.name),
        })
    }

    async fn visit(&self, _request: VisitRequest) -> Result<VisitReply, Status> {
        let visits = self.visits.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(VisitReply { visits })
    }
}

/// Starts a greeter server on `addr` over `net` and `transport`; returns
/// its address and a handle to shut it down. The server runs on a task of
/// its own.
pub async fn serve<N: Net>(
    net: N,
    transport: Transport,
    addr: SocketAddr,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let server = Server::bind(net, transport, addr, ServerConfig::default()).await?;
    let bound = server.local_addr();
    let handle = server.handle();
    tokio::spawn(server.serve(GreeterServer::new(Host::default())));
    Ok((bound, handle))
}

/// What the client saw: one line per step.
pub type Transcript = Vec<String>;

/// Connects to `server` over `net` and `transport` with a reconnecting
/// client and exercises the service: a greeting, a refused request, a
/// missed deadline and a burst of concurrent calls.
pub async fn visit<N: Net>(
    net: N,
    transport: Transport,
    server: SocketAddr,
) -> anyhow::Result<Transcript> {
    let client = Client::connect(net, transport, server, ClientConfig::default()).await?;
    let transcript = exercise(&GreeterClient::new(client.clone())).await;
    client.close();
    Ok(transcript)
}

/// Exercises any `Greeter`: the remote client and the in-memory one alike.
pub async fn exercise<C: Channel>(greeter: &GreeterClient<C>) -> Transcript {
    let mut lines = Vec::new();
    let hello = greeter
        .say_hello(HelloRequest {
            name: "Ada".into(),
            think_millis: 0,
        })
        .await;
    lines.push(format!(
        "say_hello(Ada)        -> {}",
        outcome(hello.map(|r| r.message))
    ));
    let refused = greeter.say_hello(HelloRequest::default()).await;
    lines.push(format!(
        "say_hello(\"\")         -> {}",
        outcome(refused.map(|r| r.message))
    ));
    let slow = greeter
        .clone()
        .with_timeout(Duration::from_millis(50))
        .say_hello(HelloRequest {
            name: "Grace".into(),
            think_millis: 1_000,
        })
        .await;
    lines.push(format!(
        "say_hello(slow, 50ms) -> {}",
        outcome(slow.map(|r| r.message))
    ));
    let burst = (0..100).map(|_| {
        let greeter = greeter.clone();
        tokio::spawn(async move {
            greeter
                .visit(VisitRequest {
                    name: "crowd".into(),
                })
                .await
        })
    });
    let mut highest = 0;
    for call in burst {
        if let Ok(Ok(reply)) = call.await {
            highest = highest.max(reply.visits);
        }
    }
    lines.push(format!("100 concurrent visits -> {highest} counted"));
    lines
}

fn outcome(result: Result<String, Status>) -> String {
    match result {
        Ok(message) => format!("ok: {message}"),
        Err(status) => format!("error: {status}"),
    }
}
