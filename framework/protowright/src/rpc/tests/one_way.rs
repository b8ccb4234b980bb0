//! One-way messages: handled one at a time, in arrival order, with
//! backpressure instead of loss.

use std::sync::Mutex;

use super::*;

/// Records the bodies it is sent, taking `delay` for each.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Bytes>>>,
    delay: Duration,
}

impl Service for Recorder {
    async fn call(&self, _method: u32, request: Bytes) -> Result<Bytes, Status> {
        tokio::time::sleep(self.delay).await;
        self.seen.lock().unwrap().push(request);
        Ok(Bytes::new())
    }
}

fn numbered(n: u32) -> Bytes {
    Bytes::from(n.to_le_bytes().to_vec())
}

#[tokio::test(start_paused = true)]
async fn one_way_messages_are_handled_in_arrival_order() {
    let recorder = Recorder::default();
    let client = memory::connect(recorder.clone(), Config::default());
    for n in 0..500 {
        client.send(&ECHO, numbered(n)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen, (0..500).map(numbered).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_slow_one_way_handler_pushes_back_and_loses_nothing() {
    let recorder = Recorder {
        delay: Duration::from_millis(20),
        ..Recorder::default()
    };
    let config = Config {
        one_way_queue: 2,
        heartbeat_interval: Some(Duration::from_millis(100)),
        dead_peer_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let (a, b) = tokio::io::duplex(1024);
    let server = Session::spawn(a, "client", recorder.clone(), config.clone());
    let client = Session::spawn(b, "server", NoService, config).client();
    // 100 messages take 2 s to handle: far past the dead-peer bound, during
    // which the server mostly has its reading paused.
    for n in 0..100 {
        client.send(&ECHO, numbered(n)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(recorder.seen.lock().unwrap().len(), 100);
    assert!(!client.is_closed(), "nobody was declared dead");
    drop(server);
}

#[tokio::test(start_paused = true)]
async fn one_way_messages_queued_at_go_away_are_still_handled() {
    let recorder = Recorder {
        delay: Duration::from_millis(5),
        ..Recorder::default()
    };
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = Session::spawn(a, "client", recorder.clone(), Config::default());
    let client = Session::spawn(b, "server", NoService, Config::default()).client();
    for n in 0..20 {
        client.send(&ECHO, numbered(n)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    server.go_away(Status::unavailable("maintenance")).await;
    assert!(server.closed().await.is_ok());
    assert_eq!(recorder.seen.lock().unwrap().len(), 20);
}
