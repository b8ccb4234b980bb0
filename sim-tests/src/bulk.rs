//! A multi-megabyte transfer over reliable UDP that must arrive
//! byte-identical, whatever the schedule did before the heal.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use protowright::{Client, Server, Transport};
use protowright_sim::{Ctx, Failure, HostResult, Report, Schedule, Sim, defaults};
use protowright_testing::pb::{Chunk, Traffic, traffic::Body};

const PORT: u16 = 9100;
const CHUNK: usize = 16 * 1024;

/// The transfer's bytes: a pseudo-random pattern, the same on both sides.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Sends `len` bytes from client to server under `schedule`; returns the
/// run and the bytes the server received, in order.
pub fn run(seed: u64, schedule: Schedule, len: usize) -> (Result<Report, Box<Failure>>, Vec<u8>) {
    let received = Rc::new(RefCell::new(Vec::new()));
    let server_received = Rc::clone(&received);
    let outcome = Sim::new(seed)
        .schedule(schedule)
        .limit(Duration::from_secs(120))
        .host("server", move |ctx| {
            server(ctx, Rc::clone(&server_received))
        })
        .client("client", move |ctx| client(ctx, len))
        .run();
    let bytes = received.borrow().clone();
    (outcome, bytes)
}

async fn server(ctx: Ctx, received: Rc<RefCell<Vec<u8>>>) -> HostResult {
    let address = (Ipv4Addr::UNSPECIFIED, PORT).into();
    let mut server = Server::bind(ctx.net(), Transport::Udp, address, defaults::server()).await?;
    while let Some(incoming) = server.accept().await {
        let connection = incoming.serve(protowright::rpc::NoService);
        while let Ok(Some(Traffic {
            body: Some(Body::Chunk(chunk)),
        })) = connection.recv().await
        {
            let mut bytes = received.borrow_mut();
            if chunk.offset as usize != bytes.len() {
                return Err(format!(
                    "a chunk for offset {} arrived at {}",
                    chunk.offset,
                    bytes.len()
                )
                .into());
            }
            bytes.extend_from_slice(&chunk.data);
        }
    }
    Ok(())
}

async fn client(ctx: Ctx, len: usize) -> HostResult {
    let server = ctx.addr("server", PORT);
    let client = Client::connect(ctx.net(), Transport::Udp, server, defaults::client()).await?;
    let connection = client.connection().await?;
    let data = Bytes::from(pattern(len));
    for offset in (0..len).step_by(CHUNK) {
        let chunk = Chunk {
            offset: offset as u64,
            data: data.slice(offset..(offset + CHUNK).min(len)),
        };
        connection.send(chunk).await?;
    }
    // Wait until every byte is acknowledged, then record what was resent
    // (a closed connection's counters are soon forgotten).
    while let Some(udp) = connection.stats().udp {
        if udp.queues.reliable == 0 {
            ctx.history()
                .count("udp.retransmitted", udp.packets_retransmitted);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    connection.close();
    connection.closed().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}
