//! A session against a peer that speaks raw bytes over a pipe: what a
//! client in another language does with a stock protobuf library, and what
//! a broken or hostile one does. The session must answer the first, and
//! end the connection with the second, telling it why (a GOAWAY carrying
//! the reason) and reporting a typed error.

mod support;

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use prost::Message;
use protowright::ConnectionError;
use protowright::codec::Delimited;
use protowright::rpc::{Code, Config, Session};
use protowright::v1::{Envelope, Kind};
use protowright_testing::Probe;
use protowright_testing::pb::{Payload, ProbeServer, probe_methods};
use support::payload;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A session serving a probe with a 1 KiB frame limit on one end of a
/// pipe, and the raw other end.
fn session_with_raw_peer() -> (Session, DuplexStream) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let config = Config {
        max_frame: 1024,
        ..Config::default()
    };
    let session = Session::spawn(a, "raw peer", ProbeServer::new(Probe::default()), config);
    (session, b)
}

/// Reads every delimited envelope the session writes until it closes its
/// end.
async fn envelopes_until_closed(raw: &mut DuplexStream) -> Vec<Envelope> {
    let mut bytes = Vec::new();
    raw.read_to_end(&mut bytes).await.expect("the pipe reads");
    let mut bytes = Bytes::from(bytes);
    let mut envelopes = Vec::new();
    while bytes.has_remaining() {
        envelopes.push(Envelope::decode_length_delimited(&mut bytes).expect("a whole envelope"));
    }
    envelopes
}

/// Asserts the session told the peer `code` and a reason containing
/// `because` in a GOAWAY, as the last thing it wrote.
fn assert_told_why(envelopes: &[Envelope], code: Code, because: &str) {
    let last = envelopes.last().expect("the session wrote something");
    assert_eq!(last.kind, Kind::Goaway as i32, "{envelopes:?}");
    let status = last.status.as_ref().expect("a GOAWAY says why");
    assert_eq!(status.code, code as i32, "{status:?}");
    assert!(status.message.contains(because), "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn an_oversized_frame_ends_the_session_and_the_peer_is_told_why() {
    let (session, mut raw) = session_with_raw_peer();
    // A varint announcing 1 MiB, over the 1 KiB limit.
    raw.write_all(&[0x80, 0x80, 0x40]).await.unwrap();
    let told = envelopes_until_closed(&mut raw).await;
    assert_told_why(&told, Code::ResourceExhausted, "1024");
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Frame { .. }), "{error}");
    assert!(error.to_string().contains("raw peer"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_envelope_ends_the_session_with_a_decode_error() {
    let (session, mut raw) = session_with_raw_peer();
    // A three-byte frame whose body is an invalid wire type.
    raw.write_all(&[3, 0xff, 0xff, 0xff]).await.unwrap();
    let told = envelopes_until_closed(&mut raw).await;
    assert_told_why(&told, Code::InvalidArgument, "could not decode an envelope");
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Decode { .. }), "{error}");
}

#[tokio::test(start_paused = true)]
async fn an_envelope_without_a_kind_is_a_protocol_violation() {
    let (session, mut raw) = session_with_raw_peer();
    let mut frame = BytesMut::new();
    let kindless = Envelope {
        call_id: 5,
        ..Envelope::default()
    };
    Delimited::default().encode(&kindless, &mut frame).unwrap();
    raw.write_all(&frame).await.unwrap();
    let told = envelopes_until_closed(&mut raw).await;
    assert_told_why(&told, Code::InvalidArgument, "without a kind");
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Protocol { .. }), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_inside_a_frame_is_reported_as_truncated() {
    let (session, mut raw) = session_with_raw_peer();
    raw.write_all(&[10, 1, 2, 3]).await.unwrap();
    drop(raw);
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Frame { .. }), "{error}");
    assert!(
        error.to_string().contains("ended inside a frame"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_closes_on_a_frame_boundary_ends_the_session_cleanly() {
    let (session, mut raw) = session_with_raw_peer();
    let ping = Envelope {
        kind: Kind::Ping as i32,
        call_id: 3,
        ..Envelope::default()
    };
    raw.write_all(&ping.encode_length_delimited_to_vec())
        .await
        .unwrap();
    // A half-close ends the session as a close does: whatever it still had
    // to say (here the PONG) is not waited for.
    raw.shutdown().await.unwrap();
    envelopes_until_closed(&mut raw).await;
    assert!(session.closed().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_raw_peer_speaking_plain_protobuf_gets_answers() {
    // What a client in another language does with a stock protobuf library:
    // write a delimited Envelope holding a `Payload`, read one back.
    let (_session, mut raw) = session_with_raw_peer();
    let request = Envelope {
        kind: Kind::Request as i32,
        call_id: 42,
        method: probe_methods::ECHO.id,
        body: payload(42, 14).encode_to_vec().into(),
        timeout_micros: 1_000_000,
        ..Envelope::default()
    };
    raw.write_all(&request.encode_length_delimited_to_vec())
        .await
        .unwrap();
    let mut buf = BytesMut::with_capacity(256);
    let response = loop {
        raw.read_buf(&mut buf).await.unwrap();
        let mut view = &buf[..];
        if let Ok(envelope) = Envelope::decode_length_delimited(&mut view) {
            break envelope;
        }
    };
    assert_eq!(
        (response.kind, response.call_id, response.status),
        (Kind::Response as i32, 42, None)
    );
    assert_eq!(Payload::decode(response.body).unwrap(), payload(42, 14));
}

#[tokio::test(start_paused = true)]
async fn a_raw_peer_calling_an_unknown_method_gets_unimplemented_and_stays_connected() {
    let (session, mut raw) = session_with_raw_peer();
    let request = Envelope {
        kind: Kind::Request as i32,
        call_id: 1,
        method: 0xdead_beef,
        ..Envelope::default()
    };
    raw.write_all(&request.encode_length_delimited_to_vec())
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = raw.read(&mut buf).await.unwrap();
    let response = Envelope::decode_length_delimited(&buf[..n]).unwrap();
    let status = response.status.expect("a failed call carries a status");
    assert_eq!(status.code, Code::Unimplemented as i32, "{status:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!session.client().is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_sends_its_requests_then_shuts_its_sending_side_gets_every_answer() {
    // What `printf requests | nc host port` does: write, half-close, read.
    let (session, mut raw) = session_with_raw_peer();
    let mut requests = Vec::new();
    for call_id in 1..=3u64 {
        let nap = protowright_testing::pb::Nap {
            millis: 50 * call_id,
        };
        let envelope = Envelope {
            kind: Kind::Request as i32,
            call_id,
            method: probe_methods::SLEEP.id,
            body: nap.encode_to_vec().into(),
            ..Envelope::default()
        };
        requests.extend(envelope.encode_length_delimited_to_vec());
    }
    raw.write_all(&requests).await.expect("the pipe writes");
    raw.shutdown().await.expect("half-close");
    let envelopes = envelopes_until_closed(&mut raw).await;
    let mut answered: Vec<u64> = envelopes
        .iter()
        .filter(|e| e.kind == Kind::Response as i32 && e.status.is_none())
        .map(|e| e.call_id)
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, [1, 2, 3], "{envelopes:?}");
    assert!(
        session.closed().await.is_ok(),
        "a half-close is a clean end"
    );
}
