//! What several test files share: addresses, payloads, a join without a
//! futures crate, and running a scenario on both transports. Each test
//! binary uses part of it.

#![allow(
    dead_code,
    unused_macros,
    reason = "each test binary uses a part of this module"
)]

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use protowright_testing::pb::Payload;

/// Any free port on the IPv4 loopback.
pub(crate) const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// A payload carrying `id` and `len` bytes of data.
pub(crate) fn payload(id: u64, len: usize) -> Payload {
    Payload {
        id,
        data: Bytes::from(vec![(id % 251) as u8; len]),
    }
}

/// Runs futures on tasks of their own, concurrently, and collects their
/// outputs in order.
pub(crate) async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await.expect("a test task panicked"));
    }
    outputs
}

/// A port on the loopback that nothing listens on (TCP or UDP): bound for
/// a moment by a socket of each kind, then released.
pub(crate) fn unused_port() -> SocketAddr {
    loop {
        let tcp = std::net::TcpListener::bind(LOOPBACK).expect("bind a TCP port");
        let addr = tcp.local_addr().expect("its address");
        if std::net::UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// Runs each scenario (an `async fn(Transport)` of the including file) as
/// two tests, `tcp::<scenario>` and `udp::<scenario>`, so a failure names
/// its transport.
macro_rules! on_both_transports {
    ($($scenario:ident),* $(,)?) => {
        mod tcp {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(protowright::Transport::Tcp).await;
                }
            )*
        }
        mod udp {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(protowright::Transport::Udp).await;
                }
            )*
        }
    };
}
