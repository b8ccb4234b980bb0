//! The outgoing queue: envelopes encoded straight into the next write.
//!
//! A sender encodes its envelope into the shared buffer under a short lock;
//! the writer swaps the whole buffer out and writes it in one call. So many
//! small messages cost one system call, one lock each and no per-message
//! hand-off between tasks — the cost a channel of envelopes showed in
//! profiles. The queue is bounded in envelopes and in bytes; when it is
//! full, senders wait (or `try_send` is refused).

use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use tokio::sync::Notify;

use super::wire::is_traffic;
use crate::v1::{Envelope, Kind};

/// Why an envelope was not queued.
#[derive(Debug)]
pub(super) enum Refused {
    /// The queue is at its bound.
    Full,
    /// The session has ended.
    Closed,
    /// The envelope encodes to more than the frame limit: `len` bytes.
    TooLarge(usize),
}

/// Something the outbox encodes as one envelope frame.
pub(super) trait Frame {
    /// The envelope's encoded length (without the frame's length prefix).
    fn envelope_len(&self) -> usize;
    /// Whether the envelope is call traffic (for the idle timer).
    fn is_traffic(&self) -> bool;
    /// Appends the envelope's encoding, `envelope_len` bytes.
    fn encode_envelope(&self, buf: &mut BytesMut);
}

impl Frame for Envelope {
    fn envelope_len(&self) -> usize {
        self.encoded_len()
    }

    fn is_traffic(&self) -> bool {
        is_traffic(self.kind)
    }

    fn encode_envelope(&self, buf: &mut BytesMut) {
        self.encode_raw(buf);
    }
}

/// A protocol message: a MESSAGE envelope whose body is `root` encoded in
/// place, so sending one costs no buffer of its own and no second copy.
pub(super) struct MessageFrame<'a, M> {
    root: &'a M,
    body_len: usize,
}

impl<'a, M: Message> MessageFrame<'a, M> {
    /// `body_len` is `root.encoded_len()`, which the caller has already
    /// checked against the schema's limit.
    pub(super) fn new(root: &'a M, body_len: usize) -> Self {
        Self { root, body_len }
    }
}

/// Field 1 (`kind`), varint; and field 4 (`body`), length-delimited.
const KIND_KEY: u8 = 1 << 3;
const BODY_KEY: u8 = (4 << 3) | 2;

impl<M: Message> Frame for MessageFrame<'_, M> {
    fn envelope_len(&self) -> usize {
        let body = if self.body_len == 0 {
            0
        } else {
            1 + prost::length_delimiter_len(self.body_len) + self.body_len
        };
        2 + body
    }

    fn is_traffic(&self) -> bool {
        true
    }

    fn encode_envelope(&self, buf: &mut BytesMut) {
        // As prost writes an envelope of kind MESSAGE: fields in order,
        // an empty body left out.
        buf.put_u8(KIND_KEY);
        buf.put_u8(Kind::Message as u8);
        if self.body_len > 0 {
            buf.put_u8(BODY_KEY);
            prost::encoding::encode_varint(self.body_len as u64, buf);
            self.root.encode_raw(buf);
        }
    }
}

/// What the writer takes out in one go.
#[derive(Debug)]
pub(super) struct Batch {
    /// Length-delimited envelope frames.
    pub(super) bytes: Bytes,
    pub(super) envelopes: u64,
    /// Whether any envelope was call traffic (for the idle timer).
    pub(super) traffic: bool,
}

#[derive(Debug, Default)]
struct State {
    buf: BytesMut,
    envelopes: usize,
    traffic: bool,
    closed: bool,
}

/// The bounded outgoing queue of one session.
#[derive(Debug)]
pub(super) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer when something was queued.
    filled: Notify,
    /// Wakes senders waiting for room.
    drained: Notify,
    max_envelopes: usize,
    max_bytes: usize,
    /// The largest envelope accepted (the peer refuses larger frames).
    max_frame: usize,
}

impl Outbox {
    pub(super) fn new(max_envelopes: usize, max_bytes: usize, max_frame: usize) -> Self {
        Self {
            state: Mutex::default(),
            filled: Notify::new(),
            drained: Notify::new(),
            max_envelopes: max_envelopes.max(1),
            max_bytes,
            max_frame,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `frame` if there is room now. An envelope larger than the
    /// byte bound is accepted when the queue is empty, so it can go alone.
    pub(super) fn push(&self, frame: &impl Frame) -> Result<(), Refused> {
        let len = frame.envelope_len();
        if len > self.max_frame {
            return Err(Refused::TooLarge(len));
        }
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        let over_bytes = state.envelopes > 0 && state.buf.len() + len > self.max_bytes;
        if state.envelopes >= self.max_envelopes || over_bytes {
            return Err(Refused::Full);
        }
        state.buf.reserve(prost::length_delimiter_len(len) + len);
        prost::encoding::encode_varint(len as u64, &mut state.buf);
        let before = state.buf.len();
        frame.encode_envelope(&mut state.buf);
        debug_assert_eq!(
            state.buf.len() - before,
            len,
            "an envelope's length was miscounted"
        );
        state.envelopes += 1;
        state.traffic |= frame.is_traffic();
        let first = state.envelopes == 1;
        drop(state);
        if first {
            self.filled.notify_one();
        }
        Ok(())
    }

    /// Queues `frame`, waiting for room. Fails only once closed.
    pub(super) async fn push_wait(&self, frame: &impl Frame) -> Result<(), Refused> {
        // The common case, without registering as a waiter.
        match self.push(frame) {
            Err(Refused::Full) => {}
            other => return other,
        }
        loop {
            let mut room = pin!(self.drained.notified());
            room.as_mut().enable();
            match self.push(frame) {
                Err(Refused::Full) => room.await,
                other => return other,
            }
        }
    }

    /// Takes everything queued, waiting until there is something.
    pub(super) async fn take(&self) -> Batch {
        loop {
            let mut filled = pin!(self.filled.notified());
            filled.as_mut().enable();
            if let Some(batch) = self.take_now() {
                return batch;
            }
            filled.await;
        }
    }

    /// Takes everything queued, if anything is.
    pub(super) fn take_now(&self) -> Option<Batch> {
        let mut state = self.lock();
        if state.envelopes == 0 {
            return None;
        }
        let batch = Batch {
            bytes: state.buf.split().freeze(),
            envelopes: state.envelopes as u64,
            traffic: state.traffic,
        };
        state.envelopes = 0;
        state.traffic = false;
        drop(state);
        self.drained.notify_waiters();
        Some(batch)
    }

    /// Envelopes queued now.
    pub(super) fn depth(&self) -> usize {
        self.lock().envelopes
    }

    /// Refuses every further envelope and takes what is queued, under one
    /// lock: nothing accepted after this can be left unwritten.
    pub(super) fn close_and_take(&self) -> Option<Batch> {
        let mut state = self.lock();
        state.closed = true;
        let batch = (state.envelopes > 0).then(|| Batch {
            bytes: state.buf.split().freeze(),
            envelopes: state.envelopes as u64,
            traffic: state.traffic,
        });
        state.envelopes = 0;
        state.traffic = false;
        drop(state);
        self.drained.notify_waiters();
        batch
    }

    /// Refuses every further envelope and wakes waiting senders.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Delimited;

    fn one_way(len: usize) -> Envelope {
        Envelope {
            kind: Kind::OneWay as i32,
            body: vec![1u8; len].into(),
            ..Envelope::default()
        }
    }

    #[test]
    fn queued_envelopes_come_out_as_one_batch_of_frames() {
        let outbox = Outbox::new(10, 1 << 20, 1 << 20);
        for _ in 0..3 {
            outbox.push(&one_way(10)).unwrap();
        }
        let batch = outbox.take_now().unwrap();
        assert_eq!(batch.envelopes, 3);
        assert!(batch.traffic);
        let mut codec = Delimited::default();
        let mut frames = 0;
        let mut bytes = BytesMut::from(&batch.bytes[..]);
        while let Some(frame) = codec.decode(&mut bytes).unwrap() {
            assert_eq!(Envelope::decode(frame).unwrap(), one_way(10));
            frames += 1;
        }
        assert_eq!(frames, 3);
        assert!(outbox.take_now().is_none());
    }

    #[test]
    fn the_envelope_bound_refuses_and_hands_the_envelope_back() {
        let outbox = Outbox::new(2, 1 << 20, 1 << 20);
        outbox.push(&one_way(1)).unwrap();
        outbox.push(&one_way(1)).unwrap();
        assert!(matches!(outbox.push(&one_way(7)), Err(Refused::Full)));
        assert_eq!(outbox.depth(), 2);
    }

    #[test]
    fn the_byte_bound_refuses_but_a_large_envelope_may_go_alone() {
        let outbox = Outbox::new(100, 100, 1 << 20);
        outbox.push(&one_way(500)).unwrap();
        assert!(matches!(outbox.push(&one_way(1)), Err(Refused::Full)));
        outbox.take_now().unwrap();
        outbox.push(&one_way(60)).unwrap();
        assert!(matches!(outbox.push(&one_way(60)), Err(Refused::Full)));
    }

    #[tokio::test]
    async fn a_waiting_sender_proceeds_once_the_writer_takes_the_batch() {
        let outbox = std::sync::Arc::new(Outbox::new(1, 1 << 20, 1 << 20));
        outbox.push(&one_way(1)).unwrap();
        let sender = tokio::spawn({
            let outbox = std::sync::Arc::clone(&outbox);
            async move { outbox.push_wait(&one_way(2)).await.is_ok() }
        });
        tokio::task::yield_now().await;
        assert_eq!(outbox.take().await.envelopes, 1);
        assert!(sender.await.unwrap());
        assert_eq!(outbox.take().await.envelopes, 1);
    }

    #[tokio::test]
    async fn closing_fails_waiting_senders() {
        let outbox = std::sync::Arc::new(Outbox::new(1, 1 << 20, 1 << 20));
        outbox.push(&one_way(1)).unwrap();
        let sender = tokio::spawn({
            let outbox = std::sync::Arc::clone(&outbox);
            async move { outbox.push_wait(&one_way(2)).await }
        });
        tokio::task::yield_now().await;
        outbox.close();
        assert!(matches!(sender.await.unwrap(), Err(Refused::Closed)));
    }

    #[test]
    fn a_message_frame_encodes_as_prost_encodes_its_envelope() {
        for len in [0usize, 1, 62, 127, 128, 300, 20_000] {
            let root = crate::v1::Status {
                code: 0,
                message: "x".repeat(len),
            };
            let body_len = root.encoded_len();
            let outbox = Outbox::new(10, 1 << 20, 1 << 20);
            outbox.push(&MessageFrame::new(&root, body_len)).unwrap();
            let batch = outbox.take_now().unwrap();
            let expected = Envelope {
                kind: Kind::Message as i32,
                body: root.encode_to_vec().into(),
                ..Envelope::default()
            };
            let mut frames = BytesMut::from(&batch.bytes[..]);
            let frame = Delimited::default().decode(&mut frames).unwrap().unwrap();
            assert_eq!(frame, expected.encode_to_vec(), "body of {body_len} bytes");
            assert!(frames.is_empty());
        }
    }
}
