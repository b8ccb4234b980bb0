//! The fuzz smoke: every fuzz target's hook run over its checked-in
//! corpus (`fuzz/corpus/<target>/`) and over a few thousand deterministic
//! mutations of it (bit flips, truncations, insertions, splices from a
//! seeded generator). It needs neither a nightly toolchain nor cargo-fuzz,
//! so it runs with the rest of the tests, in CI included; `cargo xtask
//! fuzz` runs the real fuzzers for longer. A panic names the target, the
//! input's origin and its bytes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use protowright::udp::proto;

/// Mutated inputs per target.
const MUTATIONS: usize = 2000;
/// A target stops early (saying so) once it has run this long, so a slow
/// machine does not stall the suite.
const BUDGET: Duration = Duration::from_secs(4);

/// What a fuzz target calls with each input.
type Hook = fn(&[u8]);

/// The fuzz targets and the hooks they call (see `fuzz/fuzz_targets/`).
const TARGETS: &[(&str, Hook)] = &[
    ("udp_packet", |data| {
        let _ = proto::fuzz_decode(data);
        let _ = proto::fuzz_decode_unsealed(data);
    }),
    ("udp_frames", |data| {
        let _ = proto::fuzz_decode_frames(data);
    }),
    ("udp_endpoint", proto::fuzz_endpoint),
    ("udp_session", |data| {
        assert!(proto::fuzz_session(data), "the session's handshake failed");
    }),
    ("udp_handshake", proto::fuzz_handshake),
    ("envelope", protowright::rpc::fuzz_envelopes),
];

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// The seed inputs of `target`, by file name, in name order.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(corpus_root().join(target)) else {
        return Vec::new();
    };
    let mut seeds: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path.file_name().expect("file name").to_string_lossy();
            (
                name.into_owned(),
                std::fs::read(&path).expect("corpus file"),
            )
        })
        .collect();
    seeds.sort();
    seeds
}

/// SplitMix64: a small seeded generator, so every run mutates the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound` (which must not be 0).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Applies one to four random edits to `input`, splicing with `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    const INTERESTING: [u8; 8] = [0, 1, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff];
    let mut bytes = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = bytes.len();
        match rng.below(7) {
            0 if len > 0 => bytes[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => bytes[rng.below(len)] = INTERESTING[rng.below(INTERESTING.len())],
            2 => {
                let at = rng.below(len + 1);
                bytes.insert(at, rng.next() as u8);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(8)).min(len);
                bytes.drain(at..end);
            }
            4 => bytes.truncate(rng.below(len + 1)),
            5 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                let copy = bytes[at..end].to_vec();
                let to = rng.below(len + 1);
                bytes.splice(to..to, copy);
            }
            6 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from..]);
            }
            _ => bytes.push(rng.next() as u8),
        }
    }
    bytes
}

/// Runs `hook` on `input`, turning a panic into one that says which input.
fn run(target: &str, origin: &str, hook: Hook, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook(input))) {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let hex: String = input.iter().map(|byte| format!("{byte:02x}")).collect();
        panic!(
            "fuzz target {target} panicked on {origin}: {message}\ninput ({} bytes): {hex}",
            input.len()
        );
    }
}

#[test]
fn every_corpus_directory_belongs_to_a_target() {
    for entry in std::fs::read_dir(corpus_root()).expect("fuzz/corpus") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            TARGETS.iter().any(|(target, _)| *target == name),
            "fuzz/corpus/{name} names no fuzz target"
        );
    }
    for target in ["udp_session", "udp_handshake"] {
        assert!(
            corpus(target).len() >= 5,
            "fuzz/corpus/{target} lost its seeds"
        );
    }
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    for (index, &(target, hook)) in TARGETS.iter().enumerate() {
        let started = Instant::now();
        let mut seeds = corpus(target);
        for (name, input) in &seeds {
            run(target, &format!("corpus file {name}"), hook, input);
        }
        if seeds.is_empty() {
            seeds.push(("(empty)".to_owned(), Vec::new()));
        }
        let mut rng = Rng(0xf022_0000 + index as u64);
        let mut done = 0;
        while done < MUTATIONS && started.elapsed() < BUDGET {
            let (name, input) = &seeds[rng.below(seeds.len())];
            let (_, other) = &seeds[rng.below(seeds.len())];
            let mutated = mutate(&mut rng, input, other);
            run(
                target,
                &format!("mutation {done} of {name}"),
                hook,
                &mutated,
            );
            done += 1;
        }
        println!(
            "{target}: {} corpus files, {done} mutations in {:.2?}{}",
            corpus(target).len(),
            started.elapsed(),
            if done < MUTATIONS {
                " (stopped at the time budget)"
            } else {
                ""
            }
        );
    }
}
