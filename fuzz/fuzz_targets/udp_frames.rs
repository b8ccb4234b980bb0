//! The reliable-UDP frame decoder: any bytes give frames or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = protowright::udp::proto::fuzz_decode_frames(data);
});
