//! The reliable-UDP packet decoder, behind and in front of the checksum:
//! any bytes give a packet or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = protowright::udp::proto::fuzz_decode(data);
    let _ = protowright::udp::proto::fuzz_decode_unsealed(data);
});
