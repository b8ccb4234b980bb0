//! The hooks reach what they are meant to reach, and the seed corpus under
//! `fuzz/corpus/` is generated here from the real frame and packet writers
//! (`cargo test -p protowright --lib write_seed_corpus -- --ignored`
//! rewrites it).

use std::path::PathBuf;

use super::{handshake, session};
use crate::udp::proto::coding::Put;
use crate::udp::proto::crypto::RESET_TOKEN_LEN;
use crate::udp::proto::frame::{self, Fragment, Lane};
use crate::udp::proto::packet::{self, Hello, PacketType, RefuseReason};
use crate::udp::proto::{CLOSE_NORMAL, Config};

/// A seed: its target, its file name and its bytes.
type Seed = (&'static str, &'static str, Vec<u8>);

/// A session chunk: the frames, sealed by the client or (`from_server`)
/// the server.
fn chunk(from_server: bool, frames: &[u8]) -> Vec<u8> {
    assert!(frames.len() < 0x80, "a chunk holds at most 127 bytes");
    let mut chunk = vec![frames.len() as u8 | if from_server { 0x80 } else { 0 }];
    chunk.extend_from_slice(frames);
    chunk
}

fn fragment(lane: Lane, sequence: u64, total: u64, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut frames = Vec::new();
    frame::put_fragment(
        &mut frames,
        &Fragment {
            lane,
            channel: 0,
            sequence,
            total,
            offset,
            data,
        },
    );
    frames
}

fn session_seeds() -> Vec<Seed> {
    let mut ping = Vec::new();
    frame::put_ping(&mut ping);
    let mut ack = Vec::new();
    assert!(frame::put_ack(&mut ack, [3..6, 0..2].into_iter(), 250, 100));
    let mut ack_never_sent = Vec::new();
    assert!(frame::put_ack(
        &mut ack_never_sent,
        std::iter::once(1_000_000..1_000_001),
        0,
        100
    ));
    let mut max_data = Vec::new();
    frame::put_max_data(&mut max_data, 1 << 30);
    let mut close = Vec::new();
    frame::put_close(&mut close, CLOSE_NORMAL, "bye");
    let mut welcome = Vec::new();
    frame::put_welcome(&mut welcome, 42, 1 << 20, 1 << 16, &[3; RESET_TOKEN_LEN]);
    let mut padded_ping = ping.clone();
    padded_ping.extend_from_slice(&[0; 8]);
    let hello = fragment(Lane::ReliableOrdered, 1, 5, 0, b"hello");
    let first_half = fragment(Lane::ReliableOrdered, 1, 10, 0, b"hello");
    let second_half = fragment(Lane::ReliableOrdered, 1, 10, 5, b"world");
    let newer = fragment(Lane::UnreliableSequenced, 5, 3, 0, b"new");
    let older = fragment(Lane::UnreliableSequenced, 3, 3, 0, b"old");
    let session = fragment(Lane::Session, 0, 4, 0, b"rpc!");
    let unordered = fragment(Lane::ReliableUnordered, 0, 100, 0, &[0xaa; 100]);
    let mut server_reply = fragment(Lane::ReliableOrdered, 1, 2, 0, b"ok");
    server_reply.extend_from_slice(&ack);
    vec![
        ("udp_session", "ping", chunk(false, &ping)),
        ("udp_session", "padded_ping", chunk(false, &padded_ping)),
        ("udp_session", "fragment", chunk(false, &hello)),
        (
            "udp_session",
            "two_fragments",
            [chunk(false, &second_half), chunk(false, &first_half)].concat(),
        ),
        (
            "udp_session",
            "sequenced_out_of_order",
            [chunk(false, &newer), chunk(false, &older)].concat(),
        ),
        ("udp_session", "session_lane", chunk(false, &session)),
        ("udp_session", "unordered_100", chunk(false, &unordered)),
        ("udp_session", "ack", chunk(false, &ack)),
        (
            "udp_session",
            "ack_never_sent",
            chunk(false, &ack_never_sent),
        ),
        ("udp_session", "max_data", chunk(false, &max_data)),
        ("udp_session", "close", chunk(false, &close)),
        ("udp_session", "welcome_to_server", chunk(false, &welcome)),
        ("udp_session", "welcome_to_client", chunk(true, &welcome)),
        (
            "udp_session",
            "server_reply_and_ack",
            chunk(true, &server_reply),
        ),
        (
            "udp_session",
            "close_after_data",
            [chunk(false, &hello), chunk(true, &close)].concat(),
        ),
        ("udp_frames", "ack", ack),
        ("udp_frames", "fragment", hello),
        ("udp_frames", "close", close),
        ("udp_frames", "welcome", welcome),
        ("udp_frames", "max_data_ping", [max_data, ping].concat()),
    ]
}

/// Script steps (see `handshake.rs`).
const STEP: u8 = 0;
const DROP: u8 = 1;
const ALTER: u8 = 2;
const INITIAL: u8 = 3;
const ANSWER: u8 = 4;
const RETRY: u8 = 5;
const REFUSE: u8 = 6;
const RESET: u8 = 7;
const RAW: u8 = 8;
const REPEAT: u8 = 9;
const A: u8 = 0x10;
const B: u8 = 0x20;
const D: u8 = 0x80;

/// An `INITIAL` step's operands after the connection id: max data, max
/// message, security, cipher and the handshake bytes.
fn initial_fields(security: u8, handshake: &[u8]) -> Vec<u8> {
    let mut fields = Vec::new();
    fields.extend_from_slice(&(1u64 << 20).to_le_bytes());
    fields.extend_from_slice(&(1u64 << 16).to_le_bytes());
    fields.extend_from_slice(&[security, 1, handshake.len() as u8]);
    fields.extend_from_slice(handshake);
    fields
}

fn handshake_seeds() -> Vec<Seed> {
    let cid = 0x5eed_u64.to_le_bytes();
    let with_cid = |op: u8, security: u8, handshake: &[u8]| {
        [&[op][..], &cid, &initial_fields(security, handshake)].concat()
    };
    let mut answer = vec![ANSWER, 48];
    answer.extend_from_slice(&[7; 48]);
    answer.extend_from_slice(&[0; 8]);
    answer.push(40);
    answer.extend_from_slice(&[0; 40]);
    let mut refuse = vec![REFUSE, RefuseReason::Full as u8, 4];
    refuse.extend_from_slice(b"full");
    vec![
        ("udp_handshake", "clean", vec![STEP, 25]),
        ("udp_handshake", "drop_first_initial", vec![DROP, STEP, 100]),
        (
            "udp_handshake",
            "alter_first_initial_resealed",
            vec![ALTER | B, 60, 0, 0x01, STEP, 50],
        ),
        (
            "udp_handshake",
            "alter_second_initial_resealed",
            vec![STEP, 0, STEP, 0, ALTER | B, 100, 0, 0x01, STEP, 50],
        ),
        (
            "udp_handshake",
            "alter_answers",
            vec![
                STEP,
                0,
                ALTER | A,
                12,
                0,
                0x80,
                STEP,
                0,
                STEP,
                0,
                ALTER | A,
                30,
                0,
                0x04,
                STEP,
                50,
            ],
        ),
        (
            "udp_handshake",
            "repeat_initials",
            vec![REPEAT, STEP, 0, STEP, 0, REPEAT, STEP, 50],
        ),
        (
            "udp_handshake",
            "nx_hello_with_cookie",
            with_cid(INITIAL | D, 2, &[0x42; 32]),
        ),
        (
            "udp_handshake",
            "ik_hello_with_cookie",
            with_cid(INITIAL | D, 1, &[0x42; 96]),
        ),
        (
            "udp_handshake",
            "plaintext_hello_with_cookie",
            with_cid(INITIAL | D, 0, &[1; 16]),
        ),
        (
            "udp_handshake",
            "client_hello_repeated_with_cookie",
            [
                &[STEP, 0, INITIAL | A | B | D][..],
                &initial_fields(2, &[0x42; 32]),
            ]
            .concat(),
        ),
        (
            "udp_handshake",
            "forged_answer",
            [&[STEP, 0, STEP, 0][..], &answer].concat(),
        ),
        (
            "udp_handshake",
            "retry_with_echo",
            [&[RETRY | A, 16][..], &[0xc0; 16], &[STEP, 50]].concat(),
        ),
        ("udp_handshake", "refuse", refuse),
        (
            "udp_handshake",
            "resets",
            [
                &[STEP, 0, STEP, 0, STEP, 0, STEP, 0, RESET, 16][..],
                &[0; 16],
                &[RESET | A, 16],
                &[0; 16],
            ]
            .concat(),
        ),
        (
            "udp_handshake",
            "raw_sealed",
            [&[RAW | B, 10][..], &[1, 2, 0, 0, 0, 0, 0, 0, 0, 1]].concat(),
        ),
    ]
}

/// Seeds for the decoders and the bare server: whole packets.
fn packet_seeds() -> Vec<Seed> {
    let hello = Hello {
        schema_hash: Config::default().schema_hash,
        max_data: 1 << 20,
        max_message: 1 << 16,
        cookie: &[],
        security: 2,
        cipher: 1,
        key_update: 1 << 22,
        handshake: &[0x42; 32],
    };
    let mut initial = Vec::new();
    packet::encode_initial(&mut initial, 0x5eed, &hello);
    let mut retry = Vec::new();
    packet::encode_retry(&mut retry, 0x5eed, &[9; 40], &[0x42; 32]);
    let mut refuse = Vec::new();
    packet::encode_refuse(&mut refuse, 0x5eed, RefuseReason::Schema, "schema");
    let mut reset = Vec::new();
    packet::encode_reset(&mut reset, 0x5eed, &[0; RESET_TOKEN_LEN]);
    let mut data = Vec::new();
    packet::encode_protected_header(&mut data, 0x5eed, None, 7);
    data.extend_from_slice(&[0; 24]);
    let mut answer = Vec::new();
    packet::encode_protected_header(&mut answer, 0x5eed, Some(&[7; 48]), 0);
    answer.extend_from_slice(&[0; 24]);
    // The bare server's input is chunks of at most 255 bytes: a short
    // (undersized) initial, a stray data packet.
    let mut short_initial = Vec::new();
    packet::put_header(&mut short_initial, PacketType::Initial, 0x5eed);
    short_initial.put_u64(hello.schema_hash);
    short_initial.put_varint(hello.max_data);
    short_initial.put_varint(hello.max_message);
    short_initial.put_blob(&[]);
    short_initial.extend_from_slice(&[2, 1]);
    short_initial.put_blob(hello.handshake);
    let sealed = |mut bytes: Vec<u8>| {
        packet::seal(&mut bytes, 0);
        bytes
    };
    let endpoint_chunk = |bytes: &[u8]| [&[bytes.len() as u8][..], bytes].concat();
    vec![
        ("udp_packet", "initial", sealed(initial)),
        ("udp_packet", "retry", sealed(retry.clone())),
        ("udp_packet", "refuse", sealed(refuse.clone())),
        ("udp_packet", "reset", sealed(reset)),
        ("udp_packet", "data", data.clone()),
        ("udp_packet", "handshake_answer", answer),
        (
            "udp_endpoint",
            "short_initial",
            endpoint_chunk(&short_initial),
        ),
        ("udp_endpoint", "stray_data", endpoint_chunk(&data)),
        (
            "udp_endpoint",
            "retry_and_refuse",
            [endpoint_chunk(&retry), endpoint_chunk(&refuse)].concat(),
        ),
    ]
}

/// Seeds for the TCP envelope decoder: varint-delimited frames holding an
/// envelope (kind, call id, method, body, timeout).
fn envelope_seeds() -> Vec<Seed> {
    let call = [0x08, 1, 0x10, 7, 0x18, 3, 0x22, 2, b'h', b'i', 0x30, 100];
    let reply = [0x08, 2, 0x10, 7, 0x22, 0];
    let unusual = [0x08, 1, 0x2a, 3, b'a', b'b', b'c'];
    let frame = |envelope: &[u8]| [&[envelope.len() as u8][..], envelope].concat();
    vec![
        ("envelope", "call", frame(&call)),
        (
            "envelope",
            "call_and_reply",
            [frame(&call), frame(&reply)].concat(),
        ),
        ("envelope", "unusual_field", frame(&unusual)),
        ("envelope", "cut_short", frame(&call)[..7].to_vec()),
    ]
}

fn seeds() -> Vec<Seed> {
    [
        session_seeds(),
        handshake_seeds(),
        packet_seeds(),
        envelope_seeds(),
    ]
    .concat()
}

#[test]
fn a_pair_completes_its_handshake_on_a_clean_link() {
    let pair = super::pair::Pair::connected().expect("connected");
    assert!(pair.is_connected());
    let connection = pair.client.connection(pair.client_conn).expect("client");
    assert!(connection.is_encrypted());
}

#[test]
fn sealed_fragments_reach_the_server_application() {
    let quiet = session::run(&[]).expect("established");
    let (_, _, fragment) = session_seeds()
        .into_iter()
        .find(|(_, name, _)| *name == "fragment")
        .expect("seed");
    let pair = session::run(&fragment).expect("established");
    // The two preloaded messages each way, then the fuzzer's.
    assert_eq!(pair.delivered, quiet.delivered + 1);
    let server = pair.server_conn.and_then(|h| pair.server.connection(h));
    assert_eq!(server.expect("server").stats().unauthentic_packets, 0);
}

#[test]
fn an_ack_of_a_number_never_sent_closes_the_session() {
    let (_, _, seed) = session_seeds()
        .into_iter()
        .find(|(_, name, _)| *name == "ack_never_sent")
        .expect("seed");
    let pair = session::run(&seed).expect("established");
    let server = pair.server_conn.and_then(|h| pair.server.connection(h));
    assert!(server.is_none_or(|connection| connection.is_closed()));
}

#[test]
fn an_empty_handshake_script_connects_and_so_does_one_that_drops_the_first_hellos() {
    assert!(handshake::run(&[]).expect("pair").is_connected());
    let drops = [DROP, STEP, 0].repeat(2);
    let pair = handshake::run(&drops).expect("pair");
    assert!(pair.is_connected());
    assert!(
        pair.client.stats().bytes_sent > 3 * 1200,
        "{:?}",
        pair.client.stats()
    );
}

#[test]
fn every_seed_runs() {
    for (target, name, bytes) in seeds() {
        match target {
            "udp_session" => assert!(super::fuzz_session(&bytes), "{name}"),
            "udp_handshake" => super::fuzz_handshake(&bytes),
            "udp_endpoint" => super::fuzz_endpoint(&bytes),
            _ => {}
        }
    }
}

/// Rewrites the seed corpus under `fuzz/corpus/`.
#[test]
#[ignore = "writes the checked-in seed corpus; run by hand after a wire change"]
fn write_seed_corpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (target, name, bytes) in seeds() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(name), bytes).expect("seed written");
    }
}
