//! A server endpoint fed arbitrary datagrams (checksums fixed up so the
//! bytes reach the decoders and the connection logic): it must never
//! panic, whatever arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protowright::udp::proto::fuzz_endpoint(data);
});
