//! A client and a server mid-handshake with the fuzzer on the path:
//! dropped, altered and repeated packets, forged `Initial`s (with cookies
//! the server issued), answers, retries, refusals and resets. Neither
//! side may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protowright::udp::proto::fuzz_handshake(data);
});
