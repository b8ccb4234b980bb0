//! A server endpoint fed arbitrary datagrams (checksums fixed up so the
//! bytes reach the decoders and the connection logic): it must never
//! panic, whatever arrives.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use protowright::udp::proto::{Config, Endpoint};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let Ok(mut server) = Endpoint::new(Config::default(), start, 1) else {
        return;
    };
    server.listen(true);
    let from = "10.0.0.1:4000".parse().expect("address");
    let mut buf = Vec::new();
    // The input is a sequence of datagrams, each prefixed by a length byte.
    let mut rest = data;
    let mut now = start;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        let sealed = protowright::udp::proto::fuzz_seal(datagram);
        server.handle_datagram(now, from, &sealed);
        server.handle_datagram(now, from, datagram);
        now += Duration::from_millis(7);
        server.handle_timeout(now);
        while server.poll_transmit(now, &mut buf).is_some() {
            buf.clear();
        }
        while server.poll_event().is_some() {}
    }
});
