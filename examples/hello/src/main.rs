use hello::Host;
use hello::pb::{self, Greeter, GreeterClient, GreeterServer, HelloRequest, Notice};
//                    ^^^^^^^ the service trait: its methods are the client's calls
use protowright::net::Tokio;
use protowright::{Client, ClientConfig, Protocol, Server, ServerConfig, Transport};
//                                      ^^^^^^^^ the trait behind `into_kind()`

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Tcp or Udp: nothing else changes.
    let transport: Transport = std::env::args().nth(1).unwrap_or("tcp".into()).parse()?;

    // In memory, for tests: the real protocol over a pipe, no sockets.
    let greeter = GreeterClient::in_memory(Host);
    let hello = greeter.say_hello(HelloRequest { name: "Ada".into() });
    println!("{}", hello.await?.message);

    // A server: each connection is served by the generated dispatcher, and
    // greeted with a pushed message (`serve_with(|connection| ...)` hands a
    // service its own connection, to push from it).
    let config = ServerConfig::default();
    let mut server = Server::bind(Tokio, transport, "127.0.0.1:0".parse()?, config).await?;
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
    let hello = greeter.say_hello(HelloRequest {
        name: "Grace".into(),
    });
    println!("{}", hello.await?.message);
    if let Some(push) = client.recv::<pb::Push>().await? {
        match push.into_kind() {
            Some(pb::push::Kind::Notice(notice)) => println!("notice: {}", notice.text),
            Some(pb::push::Kind::Wave(wave)) => println!("{} waves", wave.from),
            None => {}
        }
    }
    client.close();
    shutdown.shutdown().await; // graceful: calls in flight finish first
    Ok(())
}
