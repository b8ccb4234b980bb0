//! Reliable UDP over a real kernel path with real loss: inside a network
//! namespace the test creates, whose loopback drops 5% of UDP packets at
//! random (nftables `numgen random`). Skips, saying why, where namespaces
//! or nftables are unavailable (not root, no `ip`, no `nft`).
//!
//! The test re-runs its own binary inside the namespace with
//! `ip netns exec`, so the transfer's sockets live there.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protowright::Delivery;
use protowright::net::Tokio;
use protowright::udp::{Config, Endpoint};

const CHILD: &str = "PROTOWRIGHT_NETNS_CHILD";

/// Deletes the namespace when the test ends, however it ends.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Creates a namespace whose loopback (MTU 1500) drops `percent`% of UDP.
fn lossy_namespace(percent: u32) -> Result<Namespace, String> {
    let name = format!("pw-udp-{}", std::process::id());
    run(&["ip", "netns", "add", &name])?;
    let namespace = Namespace(name.clone());
    let exec = |rest: &[&str]| {
        let mut args = vec!["ip", "netns", "exec", &name];
        args.extend_from_slice(rest);
        run(&args)
    };
    exec(&["ip", "link", "set", "lo", "mtu", "1500", "up"])?;
    exec(&["nft", "add", "table", "inet", "pw"])?;
    exec(&[
        "nft",
        "add",
        "chain",
        "inet",
        "pw",
        "in",
        // On input: a drop on output would fail the sender's send (EPERM).
        "{ type filter hook input priority 0; }",
    ])?;
    let rule = format!("meta l4proto udp numgen random mod 100 < {percent} drop");
    let mut args = vec!["nft", "add", "rule", "inet", "pw", "in"];
    args.extend(rule.split(' '));
    exec(&args)?;
    Ok(namespace)
}

#[test]
fn a_transfer_survives_five_percent_real_loss() {
    let namespace = match lossy_namespace(5) {
        Ok(namespace) => namespace,
        Err(why) => {
            eprintln!("skipped: no network namespace with nftables here ({why})");
            return;
        }
    };
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new("ip")
        .args(["netns", "exec", &namespace.0])
        .arg(exe)
        .args([
            "--exact",
            "transfer_in_namespace",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the transfer in the namespace");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "transfer failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the transfer did not run:\n{stdout}\n{stderr}"
    );
    eprintln!("{stderr}");
}

/// The transfer itself; runs only inside the namespace.
#[tokio::test]
#[ignore = "run by a_transfer_survives_five_percent_real_loss inside its namespace"]
async fn transfer_in_namespace() {
    assert_eq!(
        std::env::var(CHILD).as_deref(),
        Ok("1"),
        "run through the namespace test"
    );
    let server = Endpoint::server(&Tokio, (Ipv4Addr::LOCALHOST, 0).into(), Config::default())
        .await
        .expect("server");
    let client = Endpoint::client(&Tokio, (Ipv4Addr::LOCALHOST, 0).into(), Config::default())
        .await
        .expect("client");
    let connection = client.connect(server.local_addr()).await.expect("connect");
    let accepted = server.accept().await.expect("accept");
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        for index in 0u32..128 {
            let data: Vec<u8> = (0..64 * 1024)
                .map(|i| (i as u32).wrapping_mul(index + 1) as u8)
                .collect();
            connection
                .send(Delivery::ReliableOrdered, 0, Bytes::from(data))
                .await
                .expect("send");
        }
        connection
    });
    for index in 0u32..128 {
        let message = tokio::time::timeout(Duration::from_secs(60), accepted.recv())
            .await
            .expect("in time")
            .expect("message");
        assert!(
            message
                .data
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i as u32).wrapping_mul(index + 1) as u8),
            "message {index} corrupted"
        );
    }
    let elapsed = started.elapsed();
    let connection = sender.await.expect("sender");
    let stats = connection.stats().expect("stats");
    eprintln!(
        "8 MiB through 5% loss in {elapsed:?} ({:.1} MB/s): {} packets sent, {} lost, {} retransmitted, cwnd {}",
        8.0 * 1.048_576 / elapsed.as_secs_f64(),
        stats.packets_sent,
        stats.packets_lost,
        stats.packets_retransmitted,
        stats.congestion_window
    );
    assert!(stats.packets_lost > 0, "no loss was seen: {stats:?}");
    // Path MTU discovery, with the don't-fragment bit set, found the
    // namespace's 1,500-byte MTU (1,472 bytes of IPv4 UDP payload)
    // instead of sending IP fragments, through the loss.
    assert!(
        (1400..=1472).contains(&stats.datagram_size),
        "settled on {}: {stats:?}",
        stats.datagram_size
    );
}
