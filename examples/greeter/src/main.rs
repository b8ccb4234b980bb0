//! `cargo xtask demo`: the greeter over loopback TCP, in memory, and in a
//! deterministic simulation — the same service code each time.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use greeter::pb::GreeterClient;
use greeter::{Host, Transcript, exercise, serve, visit};
use protowright::net::{Net, Tokio};
use protowright_sim::Turmoil;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        print("over loopback TCP", loopback().await?);
        print(
            "in memory (no sockets)",
            exercise(&GreeterClient::in_memory(Host::default())).await,
        );
        anyhow::Ok(())
    })?;
    print(
        "in a turmoil simulation (seed 7, 5-20 ms latency)",
        simulation()?,
    );
    Ok(())
}

async fn loopback() -> anyhow::Result<Transcript> {
    let listener = Tokio.listen((Ipv4Addr::LOCALHOST, 0).into()).await?;
    let server = listener.local_addr()?;
    let serving = tokio::spawn(serve(listener, 1));
    let transcript = visit(Tokio, server).await?;
    serving.await??;
    Ok(transcript)
}

fn simulation() -> anyhow::Result<Transcript> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(7)
        .min_message_latency(Duration::from_millis(5))
        .max_message_latency(Duration::from_millis(20))
        .build();
    sim.host("server", || async {
        let listener = Turmoil.listen((Ipv4Addr::UNSPECIFIED, 9000).into()).await?;
        serve(listener, 1).await.map_err(|e| e.to_string().into())
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), 9000).into();
        let transcript = visit(Turmoil, server).await.map_err(|e| e.to_string())?;
        let _ = sender.send(transcript);
        Ok(())
    });
    sim.run()
        .map_err(|e| anyhow::anyhow!("simulation failed: {e}"))?;
    Ok(receiver.recv()?)
}

fn print(title: &str, transcript: Transcript) {
    println!("== greeter {title}");
    for line in transcript {
        println!("   {line}");
    }
}
