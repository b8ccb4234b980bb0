//! `cargo xtask demo`: the greeter over loopback TCP, in memory, and in a
//! deterministic simulation — the same service code each time.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use greeter::pb::GreeterClient;
use greeter::{Host, Transcript, exercise, serve, visit};
use protowright::Transport;
use protowright::net::Tokio;
use protowright_sim::Turmoil;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        print("over loopback TCP", loopback(Transport::Tcp).await?);
        print(
            "over reliable UDP on loopback",
            loopback(Transport::Udp).await?,
        );
        print(
            "in memory (no sockets)",
            exercise(&GreeterClient::in_memory(Host::default())).await,
        );
        anyhow::Ok(())
    })?;
    print(
        "in a turmoil simulation (seed 7, 5-20 ms latency)",
        simulation(Transport::Tcp)?,
    );
    print(
        "over reliable UDP in a turmoil simulation (seed 7, 5-20 ms latency)",
        simulation(Transport::Udp)?,
    );
    Ok(())
}

async fn loopback(transport: Transport) -> anyhow::Result<Transcript> {
    let (server, handle) = serve(Tokio, transport, (Ipv4Addr::LOCALHOST, 0).into()).await?;
    let transcript = visit(Tokio, transport, server).await?;
    handle.shutdown().await;
    Ok(transcript)
}

/// Runs the greeter on two turmoil hosts (seed 7, 5-20 ms latency).
fn simulation(transport: Transport) -> anyhow::Result<Transcript> {
    protowright_sim::reseed(7);
    let mut sim = turmoil::Builder::new()
        .rng_seed(7)
        .min_message_latency(Duration::from_millis(5))
        .max_message_latency(Duration::from_millis(20))
        .build();
    sim.host("server", move || async move {
        let addr = (Ipv4Addr::UNSPECIFIED, 9000).into();
        // Hold the server until the simulation ends.
        let _held = serve(Turmoil, transport, addr)
            .await
            .map_err(|e| e.to_string())?;
        std::future::pending::<()>().await;
        Ok(())
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), 9000).into();
        let transcript = visit(Turmoil, transport, server).await;
        let _ = sender.send(transcript.map_err(|e| e.to_string())?);
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
