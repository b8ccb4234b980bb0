//! The TCP transport's frame cutter and envelope decoder: any byte stream
//! gives envelopes or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protowright::rpc::fuzz_envelopes(data);
});
