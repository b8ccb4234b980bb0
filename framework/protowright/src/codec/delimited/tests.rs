use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

fn frame(body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    Delimited::default().encode_bytes(body, &mut out).unwrap();
    out
}

#[test]
fn decodes_a_frame_written_by_prost_length_delimited() {
    let mut wire = Vec::new();
    prost::Message::encode_length_delimited(&String::from("hello"), &mut wire).unwrap();
    let mut buf = BytesMut::from(&wire[..]);
    let body = Delimited::default().decode(&mut buf).unwrap().unwrap();
    let text: String = prost::Message::decode(body).unwrap();
    assert_eq!(text, "hello");
    assert!(buf.is_empty());
}

#[test]
fn waits_for_more_bytes_on_a_partial_prefix_and_body() {
    let mut codec = Delimited::default();
    let body = vec![7u8; 300]; // a two-byte prefix
    let wire = frame(&body);
    let mut buf = BytesMut::from(&wire[..1]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(&wire[1..100]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.put_slice(&wire[100..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Bytes::from(body)));
}

#[test]
fn refuses_an_oversized_length_before_reserving_room() {
    let mut codec = Delimited::new(1024);
    let mut buf = BytesMut::new();
    put_varint(&mut buf, 1 << 40);
    let capacity_before = buf.capacity();
    assert_eq!(
        codec.decode(&mut buf),
        Err(FrameError::TooLarge {
            len: 1 << 40,
            max: 1024
        })
    );
    assert_eq!(buf.capacity(), capacity_before);
}

#[test]
fn an_accepted_large_announcement_reserves_nothing_beyond_what_arrived() {
    let mut codec = Delimited::default();
    let mut buf = BytesMut::new();
    put_varint(&mut buf, DEFAULT_MAX_FRAME as u64);
    buf.put_slice(&[1, 2, 3]);
    let capacity_before = buf.capacity();
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.announced(), Some(DEFAULT_MAX_FRAME));
    assert_eq!(
        buf.capacity(),
        capacity_before - 4,
        "only the prefix was consumed"
    );
}

#[test]
fn refuses_a_varint_longer_than_ten_bytes() {
    let mut buf = BytesMut::from(&[0xffu8; 11][..]);
    assert_eq!(
        Delimited::default().decode(&mut buf),
        Err(FrameError::BadLength { max_len: 10 })
    );
}

#[test]
fn refuses_a_varint_that_overflows_64_bits() {
    let mut bytes = vec![0xffu8; 9];
    bytes.push(0x02);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(
        Delimited::default().decode(&mut buf),
        Err(FrameError::BadLength { max_len: 10 })
    );
}

#[test]
fn reports_a_stream_that_ends_inside_a_frame() {
    let mut codec = Delimited::default();
    let wire = frame(&[1, 2, 3, 4, 5]);
    let mut buf = BytesMut::from(&wire[..3]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(
        codec.decode_eof(&buf),
        Err(FrameError::Truncated { missing: 3 })
    );
}

#[test]
fn a_stream_ending_on_a_frame_boundary_is_clean() {
    let mut codec = Delimited::default();
    let mut buf = frame(b"abc");
    assert!(codec.decode(&mut buf).unwrap().is_some());
    assert_eq!(codec.decode_eof(&buf), Ok(()));
}

#[test]
fn refuses_to_encode_a_message_over_the_limit() {
    let codec = Delimited::new(4);
    let mut dst = BytesMut::new();
    assert_eq!(
        codec.encode_bytes(b"12345", &mut dst),
        Err(FrameError::MessageTooLarge { len: 5, max: 4 })
    );
    assert!(dst.is_empty());
}

#[test]
fn an_empty_body_is_a_valid_frame() {
    let mut buf = frame(b"");
    assert_eq!(buf.len(), 1);
    assert_eq!(
        Delimited::default().decode(&mut buf).unwrap(),
        Some(Bytes::new())
    );
}

proptest! {
    /// Any sequence of frames, cut into arbitrary chunks, decodes to the same
    /// sequence, and the stream ends cleanly.
    #[test]
    fn round_trips_over_arbitrary_chunking(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..20),
        cuts in proptest::collection::vec(1usize..64, 1..50),
    ) {
        let mut wire = BytesMut::new();
        let codec = Delimited::new(1024);
        for body in &bodies {
            codec.encode_bytes(body, &mut wire).unwrap();
        }
        let mut decoder = Delimited::new(1024);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut rest = &wire[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            buf.put_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                decoded.push(frame.to_vec());
            }
        }
        prop_assert_eq!(decoded, bodies);
        prop_assert_eq!(decoder.decode_eof(&buf), Ok(()));
    }

    /// Arbitrary bytes never panic the decoder: they decode, wait or fail.
    #[test]
    fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut decoder = Delimited::new(16);
        let mut buf = BytesMut::from(&input[..]);
        while let Ok(Some(_)) = decoder.decode(&mut buf) {}
    }
}
