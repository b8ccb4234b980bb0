//! Session behaviour over an in-memory duplex, in paused tokio time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Notify;

use super::*;
use crate::codec::Delimited;
use crate::error::ConnectionError;
use crate::schema::Method;
use crate::v1::{Envelope, Kind};

const ECHO: Method = Method {
    id: 1,
    path: "/test.Probe/Echo",
    idempotent: true,
};
const SLEEP: Method = Method {
    id: 2,
    path: "/test.Probe/Sleep",
    idempotent: false,
};
const FAIL: Method = Method {
    id: 3,
    path: "/test.Probe/Fail",
    idempotent: false,
};
const BLOCK: Method = Method {
    id: 4,
    path: "/test.Probe/Block",
    idempotent: false,
};
const DOUBLE: Method = Method {
    id: 5,
    path: "/test.Probe/Double",
    idempotent: true,
};
const MISSING: Method = Method {
    id: 99,
    path: "/test.Probe/Missing",
    idempotent: false,
};

/// A service whose methods exercise the session: echo, sleep for the number
/// of milliseconds in the body, fail, block until released, and double the
/// body.
#[derive(Clone, Default)]
struct Probe {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    release: Arc<Notify>,
}

/// Counts a handler as running until it is dropped, finished or not.
struct Running<'a> {
    probe: &'a Probe,
    finished: bool,
}

impl<'a> Running<'a> {
    fn start(probe: &'a Probe) -> Self {
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.peak.fetch_max(now, Ordering::SeqCst);
        Self {
            probe,
            finished: false,
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.probe.running.fetch_sub(1, Ordering::SeqCst);
        let counter = if self.finished {
            &self.probe.finished
        } else {
            &self.probe.dropped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl Service for Probe {
    async fn call(&self, method: u32, request: Bytes) -> Result<Bytes, Status> {
        let mut running = Running::start(self);
        let outcome = match method {
            1 => Ok(request),
            2 => {
                let millis = u64::from_le_bytes(request[..8].try_into().unwrap_or_default());
                tokio::time::sleep(Duration::from_millis(millis)).await;
                Ok(Bytes::from_static(b"slept"))
            }
            3 => Err(Status::new(
                Code::FailedPrecondition,
                "the probe always fails",
            )),
            4 => {
                self.release.notified().await;
                Ok(Bytes::new())
            }
            5 => Ok(Bytes::from([&request[..], &request[..]].concat())),
            other => Err(Status::unimplemented(format!("no method {other}"))),
        };
        running.finished = true;
        outcome
    }
}

fn millis(ms: u64) -> Bytes {
    Bytes::copy_from_slice(&ms.to_le_bytes())
}

fn within(timeout: Duration) -> CallOptions {
    CallOptions {
        timeout: Some(timeout),
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_returns_the_handlers_response() {
    let client = memory::connect(Probe::default(), Config::default());
    let reply = client
        .call(&ECHO, Bytes::from_static(b"hello"), CallOptions::default())
        .await;
    assert_eq!(reply, Ok(Bytes::from_static(b"hello")));
}

#[tokio::test(start_paused = true)]
async fn a_handlers_status_reaches_the_caller_with_its_message() {
    let client = memory::connect(Probe::default(), Config::default());
    let status = client
        .call(&FAIL, Bytes::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "the probe always fails");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_method_is_unimplemented() {
    let client = memory::connect(Probe::default(), Config::default());
    let status = client
        .call(&MISSING, Bytes::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

#[tokio::test(start_paused = true)]
async fn many_concurrent_calls_each_get_their_own_response() {
    let client = memory::connect(Probe::default(), Config::default());
    let calls = (0..500u32).map(|n| {
        let client = client.clone();
        async move {
            let body = Bytes::from(n.to_le_bytes().to_vec());
            (n, client.call(&ECHO, body, CallOptions::default()).await)
        }
    });
    for (n, reply) in futures_join_all(calls).await {
        assert_eq!(reply, Ok(Bytes::from(n.to_le_bytes().to_vec())));
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_deadline_fails_and_the_handler_is_stopped() {
    let probe = Probe::default();
    let client = memory::connect(probe.clone(), Config::default());
    let status = client
        .call(&SLEEP, millis(10_000), within(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    // The callee learns of the deadline too (from the request and from the
    // cancel), so the handler never runs to completion.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(probe.dropped.load(Ordering::SeqCst), 1);
    assert_eq!(probe.finished.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_call_cancels_the_handler() {
    let probe = Probe::default();
    let client = memory::connect(probe.clone(), Config::default());
    let call = client.call(&BLOCK, Bytes::new(), CallOptions { timeout: None });
    // Poll the call long enough for the request to reach the handler.
    let _ = tokio::time::timeout(Duration::from_millis(10), call).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(probe.dropped.load(Ordering::SeqCst), 1);
    assert_eq!(probe.running.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn calls_in_flight_are_bounded_by_the_callers_limit() {
    let probe = Probe::default();
    let config = Config {
        max_in_flight: 3,
        ..Config::default()
    };
    let client = memory::connect(probe.clone(), config);
    let calls = (0..10).map(|_| {
        let client = client.clone();
        async move { client.call(&SLEEP, millis(5), CallOptions::default()).await }
    });
    for reply in futures_join_all(calls).await {
        assert!(reply.is_ok());
    }
    assert_eq!(probe.peak.load(Ordering::SeqCst), 3);
    assert_eq!(probe.finished.load(Ordering::SeqCst), 10);
}

#[tokio::test(start_paused = true)]
async fn requests_beyond_the_callees_limit_are_refused_at_once() {
    let probe = Probe::default();
    let (a, b) = tokio::io::duplex(1 << 16);
    let server_config = Config {
        max_concurrent_requests: 2,
        ..Config::default()
    };
    let _server = Session::spawn(a, "client", probe.clone(), server_config);
    let client = Session::spawn(b, "server", NoService, Config::default()).client();
    let blocked: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call(&BLOCK, Bytes::new(), CallOptions::default())
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let status = client
        .call(&ECHO, Bytes::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    probe.release.notify_waiters();
    for call in blocked {
        assert!(call.await.unwrap().is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn an_oversized_request_fails_without_closing_the_session() {
    let config = Config {
        max_frame: 1024,
        ..Config::default()
    };
    let client = memory::connect(Probe::default(), config);
    let big = Bytes::from(vec![0u8; 2048]);
    let status = client
        .call(&ECHO, big, CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let reply = client
        .call(&ECHO, Bytes::from_static(b"ok"), CallOptions::default())
        .await;
    assert_eq!(reply, Ok(Bytes::from_static(b"ok")));
}

#[tokio::test(start_paused = true)]
async fn an_oversized_response_becomes_a_resource_exhausted_status() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = Session::spawn(
        a,
        "client",
        Probe::default(),
        Config {
            max_frame: 1024,
            ..Config::default()
        },
    );
    let client = Session::spawn(b, "server", NoService, Config::default()).client();
    // The request fits the callee's limit but the doubled response does not.
    let status = client
        .call(&DOUBLE, Bytes::from(vec![1u8; 600]), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    drop(server);
}

#[tokio::test(start_paused = true)]
async fn ping_measures_a_round_trip() {
    let client = memory::connect(Probe::default(), Config::default());
    assert!(client.ping().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_one_way_call_runs_its_handler_without_a_response() {
    let probe = Probe::default();
    let client = memory::connect(probe.clone(), Config::default());
    client
        .send(&ECHO, Bytes::from_static(b"fire and forget"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(probe.finished.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn both_ends_of_a_session_can_serve_and_call() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let left = Session::spawn(a, "right", Probe::default(), Config::default());
    let right = Session::spawn(b, "left", Probe::default(), Config::default());
    let (left, right) = (left.client(), right.client());
    let from_left = left.call(&ECHO, Bytes::from_static(b"l"), CallOptions::default());
    let from_right = right.call(&ECHO, Bytes::from_static(b"r"), CallOptions::default());
    let (l, r) = tokio::join!(from_left, from_right);
    assert_eq!(
        (l, r),
        (Ok(Bytes::from_static(b"l")), Ok(Bytes::from_static(b"r")))
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_calls_fail_unavailable_when_the_peer_vanishes() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = Session::spawn(a, "client", Probe::default(), Config::default());
    let client = Session::spawn(b, "server 10.0.0.7:4000", NoService, Config::default()).client();
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call(&BLOCK, Bytes::new(), CallOptions::default())
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.close();
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("10.0.0.7:4000"), "{status}");
    // And calls made afterwards fail at once.
    let later = client
        .call(&ECHO, Bytes::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(later.code(), Code::Unavailable);
    assert!(client.is_closed());
}

/// Starts a session on one end of a pipe and returns the raw other end.
fn session_with_raw_peer() -> (Session, DuplexStream) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let session = Session::spawn(
        a,
        "raw peer",
        Probe::default(),
        Config {
            max_frame: 1024,
            ..Config::default()
        },
    );
    (session, b)
}

#[tokio::test(start_paused = true)]
async fn an_oversized_frame_closes_the_session_with_a_frame_error() {
    let (session, mut raw) = session_with_raw_peer();
    // A varint announcing 1 MiB, over the 1 KiB limit.
    raw.write_all(&[0x80, 0x80, 0x40]).await.unwrap();
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Frame { .. }), "{error}");
    assert!(error.to_string().contains("raw peer"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_envelope_closes_the_session_with_a_decode_error() {
    let (session, mut raw) = session_with_raw_peer();
    // A three-byte frame whose body is an invalid wire type.
    raw.write_all(&[3, 0xff, 0xff, 0xff]).await.unwrap();
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Decode { .. }), "{error}");
}

#[tokio::test(start_paused = true)]
async fn an_envelope_without_a_kind_is_a_protocol_violation() {
    let (session, mut raw) = session_with_raw_peer();
    let mut frame = BytesMut::new();
    Delimited::default()
        .encode(
            &Envelope {
                call_id: 5,
                ..Envelope::default()
            },
            &mut frame,
        )
        .unwrap();
    raw.write_all(&frame).await.unwrap();
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Protocol { .. }), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_inside_a_frame_is_reported_as_truncated() {
    let (session, mut raw) = session_with_raw_peer();
    raw.write_all(&[10, 1, 2, 3]).await.unwrap();
    drop(raw);
    let error = session.closed().await.unwrap_err();
    assert!(
        error.to_string().contains("ended inside a frame"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_raw_peer_speaking_plain_protobuf_gets_answers() {
    // What a client in another language does with a stock protobuf library:
    // write a delimited Envelope, read a delimited Envelope.
    let (_session, mut raw) = session_with_raw_peer();
    let request = Envelope {
        kind: Kind::Request as i32,
        call_id: 42,
        method: ECHO.id,
        body: Bytes::from_static(b"from elsewhere"),
        ..Envelope::default()
    };
    raw.write_all(&request.encode_length_delimited_to_vec())
        .await
        .unwrap();
    let mut buf = vec![0u8; 256];
    let n = raw.read(&mut buf).await.unwrap();
    let response = Envelope::decode_length_delimited(&buf[..n]).unwrap();
    assert_eq!(response.kind, Kind::Response as i32);
    assert_eq!(response.call_id, 42);
    assert_eq!(response.body, Bytes::from_static(b"from elsewhere"));
    assert_eq!(response.status, None);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_closes_the_session() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = Session::spawn(a, "client", Probe::default(), Config::default());
    let client = Session::spawn(b, "server", NoService, Config::default()).client();
    drop(client);
    assert!(server.closed().await.is_ok());
}

/// Joins futures concurrently without pulling in a futures crate.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("test task panicked"));
    }
    outputs
}

mod liveness;
mod one_way;
