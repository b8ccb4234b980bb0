//! `cargo xtask demo`: the greeter over loopback TCP, in memory, and in a
//! deterministic simulation — the same service code each time.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use greeter::pb::GreeterClient;
use greeter::{Host, Transcript, exercise, serve, serve_udp, visit, visit_udp};
use protowright::net::Tokio;
use protowright_sim::Turmoil;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        print("over loopback TCP", loopback().await?);
        print("over reliable UDP on loopback", loopback_udp().await?);
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
    print(
        "over reliable UDP in a turmoil simulation (seed 7, 5-20 ms latency)",
        simulation_udp()?,
    );
    Ok(())
}

async fn loopback() -> anyhow::Result<Transcript> {
    let (server, handle) = serve(Tokio, (Ipv4Addr::LOCALHOST, 0).into()).await?;
    let transcript = visit(Tokio, server, 7).await?;
    handle.shutdown().await;
    Ok(transcript)
}

async fn loopback_udp() -> anyhow::Result<Transcript> {
    let endpoint = serve_udp(Tokio, (Ipv4Addr::LOCALHOST, 0).into()).await?;
    let transcript = visit_udp(Tokio, endpoint.local_addr(), 7).await?;
    endpoint.shutdown();
    Ok(transcript)
}

fn simulation() -> anyhow::Result<Transcript> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(7)
        .min_message_latency(Duration::from_millis(5))
        .max_message_latency(Duration::from_millis(20))
        .build();
    sim.host("server", || async {
        let (_, handle) = serve(Turmoil, (Ipv4Addr::UNSPECIFIED, 9000).into())
            .await
            .map_err(|e| e.to_string())?;
        // Serve until the simulation ends.
        std::future::pending::<()>().await;
        drop(handle);
        Ok(())
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), 9000).into();
        let transcript = visit(Turmoil, server, 7).await.map_err(|e| e.to_string())?;
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

fn simulation_udp() -> anyhow::Result<Transcript> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(7)
        .min_message_latency(Duration::from_millis(5))
        .max_message_latency(Duration::from_millis(20))
        .build();
    sim.host("server", || async {
        let _endpoint = serve_udp(Turmoil, (Ipv4Addr::UNSPECIFIED, 9000).into())
            .await
            .map_err(|e| e.to_string())?;
        std::future::pending::<()>().await;
        Ok(())
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), 9000).into();
        let transcript = visit_udp(Turmoil, server, 7)
            .await
            .map_err(|e| e.to_string())?;
        let _ = sender.send(transcript);
        Ok(())
    });
    sim.run()
        .map_err(|e| anyhow::anyhow!("simulation failed: {e}"))?;
    Ok(receiver.recv()?)
}
