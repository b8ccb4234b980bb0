//! Micro-benchmarks of the codec's hot paths: framing and envelope
//! encoding on the way out, frame cutting and envelope decoding on the way
//! in, for batches of 64-byte messages (the `msgs64` workload's unit).
//!
//! Run with `cargo bench -p protowright --bench codec`.

// A benchmark's set-up failing is a broken benchmark.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use protowright::codec::Delimited;
use protowright::v1::{Envelope, Kind};

const BATCH: usize = 1000;

fn envelope(n: u64) -> Envelope {
    Envelope {
        kind: Kind::OneWay as i32,
        call_id: n,
        method: 0x1234_5678,
        body: Bytes::from(vec![7u8; 64]),
        ..Envelope::default()
    }
}

fn encoded_batch() -> BytesMut {
    let codec = Delimited::default();
    let mut wire = BytesMut::new();
    for n in 0..BATCH as u64 {
        codec.encode(&envelope(n), &mut wire).unwrap();
    }
    wire
}

fn encode(c: &mut Criterion) {
    let envelopes: Vec<Envelope> = (0..BATCH as u64).map(envelope).collect();
    let codec = Delimited::default();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("1000 envelopes of 64 B into one buffer", |b| {
        let mut wire = BytesMut::with_capacity(128 * BATCH);
        b.iter(|| {
            wire.clear();
            for envelope in &envelopes {
                codec.encode(black_box(envelope), &mut wire).unwrap();
            }
            black_box(wire.len())
        });
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let wire = encoded_batch().freeze();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("cut 1000 frames", |b| {
        b.iter(|| {
            let mut codec = Delimited::default();
            let mut buf = BytesMut::from(&wire[..]);
            let mut frames = 0;
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                frames += black_box(frame).len();
            }
            frames
        });
    });
    group.bench_function("cut and decode 1000 envelopes", |b| {
        b.iter(|| {
            let mut codec = Delimited::default();
            let mut buf = BytesMut::from(&wire[..]);
            let mut total = 0;
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                total += Envelope::decode(frame).unwrap().body.len();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
