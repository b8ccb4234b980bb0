//! A listening server fed arbitrary datagrams from one address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::input::Input;
use crate::udp::proto::{Config, Endpoint, packet};

/// Feeds a listening server arbitrary datagrams: `data` is a sequence of
/// chunks, each a length byte and that many bytes. Each chunk arrives
/// twice, once with a valid checksum appended (so the bytes reach the
/// decoders and the connection logic behind it) and once as it is; time
/// moves 7 ms between chunks and everything the server sends is taken.
/// Never panics, whatever `data` holds.
#[doc(hidden)]
pub fn fuzz_endpoint(data: &[u8]) {
    let start = Instant::now();
    let Ok(mut server) = Endpoint::new(Config::default(), start, 1) else {
        return;
    };
    server.listen(true);
    let from = SocketAddr::from(([10, 0, 0, 1], 4000));
    let mut buf = Vec::new();
    let mut sealed = Vec::new();
    let mut input = Input::new(data);
    let mut now = start;
    while !input.is_empty() {
        let datagram = input.chunk();
        sealed.clear();
        sealed.extend_from_slice(datagram);
        packet::seal(&mut sealed, 0);
        server.handle_datagram(now, from, &sealed);
        server.handle_datagram(now, from, datagram);
        now += Duration::from_millis(7);
        server.handle_timeout(now);
        while server.poll_transmit(now, &mut buf).is_some() {
            buf.clear();
        }
        while server.poll_event().is_some() {}
    }
}
