//! An established, encrypted connection fed arbitrary frames sealed under
//! the real keys, so they get past packet protection to acks, fragments,
//! flow control and close: neither side may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = protowright::udp::proto::fuzz_session(data);
});
