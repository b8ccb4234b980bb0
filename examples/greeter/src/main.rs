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
        simulation(false)?,
    );
    print(
        "over reliable UDP in a turmoil simulation (seed 7, 5-20 ms latency)",
        simulation(true)?,
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

/// Runs the greeter on two turmoil hosts (seed 7, 5-20 ms latency), over
/// TCP or over reliable UDP.
fn simulation(udp: bool) -> anyhow::Result<Transcript> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(7)
        .min_message_latency(Duration::from_millis(5))
        .max_message_latency(Duration::from_millis(20))
        .build();
    sim.host("server", move || async move {
        let addr = (Ipv4Addr::UNSPECIFIED, 9000).into();
        // Hold the server until the simulation ends.
        let _held = if udp {
            (
                None,
                Some(serve_udp(Turmoil, addr).await.map_err(|e| e.to_string())?),
            )
        } else {
            (
                Some(serve(Turmoil, addr).await.map_err(|e| e.to_string())?),
                None,
            )
        };
        std::future::pending::<()>().await;
        Ok(())
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), 9000).into();
        let transcript = if udp {
            visit_udp(Turmoil, server, 7).await
        } else {
            visit(Turmoil, server, 7).await
        };
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
