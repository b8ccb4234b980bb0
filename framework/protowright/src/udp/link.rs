//! A reliable-UDP connection's session lane as an RPC session's link: one
//! envelope per session-lane message.
//!
//! The engine already delivers session-lane messages whole, in order and
//! apart from the application's lanes, so the link only moves them: the
//! reader takes every envelope waiting (and gives their bytes back to the
//! flow-control window, since the session bounds what it holds itself);
//! the writer cuts the session's batch of delimited frames apart and queues
//! each envelope as one message, waiting while the send buffer is full.
//! Closing the link's sending side closes the connection gracefully.

use std::net::SocketAddr;
use std::task::Poll;

use bytes::{Buf, Bytes};

use super::proto::{CLOSE_NORMAL, CloseReason, Lane};
use super::{Connection, Error};
use crate::error::ConnectionError;
use crate::rpc::link::{Link, LinkReader, LinkWriter, Meter};

/// The session lane of `connection`.
#[derive(Debug)]
pub(crate) struct SessionLink {
    connection: Connection,
}

impl SessionLink {
    pub(crate) fn new(connection: Connection) -> Self {
        Self { connection }
    }
}

impl Link for SessionLink {
    type Reader = SessionReader;
    type Writer = SessionWriter;

    fn split(self) -> (SessionReader, SessionWriter) {
        (
            SessionReader {
                connection: self.connection.clone(),
            },
            SessionWriter {
                connection: self.connection,
            },
        )
    }
}

/// Takes envelopes off the session lane.
#[derive(Debug)]
pub(crate) struct SessionReader {
    connection: Connection,
}

impl LinkReader for SessionReader {
    async fn read(
        &mut self,
        frames: &mut Vec<Bytes>,
        meter: &Meter<'_>,
    ) -> Result<bool, ConnectionError> {
        let peer = self.connection.peer_addr();
        let outcome = self
            .connection
            .wait_for(|state, handle| {
                let mut bytes = 0;
                while let Some(envelope) = state.engine.recv_session(handle) {
                    bytes += envelope.len();
                    frames.push(envelope);
                }
                if bytes > 0 {
                    meter.on_read(bytes);
                    // The session bounds what it holds; the window's credit
                    // goes back at once, as a socket's buffer would drain.
                    return Poll::Ready(Ok(state.engine.release(handle, bytes as u64)));
                }
                match state.ended(handle, peer) {
                    Some(error) => Poll::Ready(Err(error)),
                    None => Poll::Pending,
                }
            })
            .await;
        match outcome {
            Ok(window_update) => {
                if window_update {
                    self.connection.wake_driver();
                }
                Ok(true)
            }
            Err(error) => ended(peer, error),
        }
    }
}

/// How the link ended: cleanly when either side closed the connection
/// normally, otherwise with why.
fn ended(peer: SocketAddr, error: Error) -> Result<bool, ConnectionError> {
    match error {
        Error::Closed {
            reason:
                CloseReason::Local {
                    code: CLOSE_NORMAL, ..
                }
                | CloseReason::Peer {
                    code: CLOSE_NORMAL, ..
                },
            ..
        } => Ok(false),
        other => Err(connection_error(peer, other)),
    }
}

/// A UDP connection's failure as the session reports it.
fn connection_error(peer: SocketAddr, error: Error) -> ConnectionError {
    let reason = match error {
        Error::Closed { reason, .. } => reason,
        other => CloseReason::Local {
            code: super::CLOSE_SESSION_FAILED,
            reason: other.to_string(),
        },
    };
    ConnectionError::Udp {
        peer: peer.to_string(),
        reason,
    }
}

/// Queues envelopes on the session lane.
#[derive(Debug)]
pub(crate) struct SessionWriter {
    connection: Connection,
}

/// The first delimited frame of `batch`: its total length (prefix
/// included) and the envelope inside. `None` when the batch does not start
/// with a whole frame (the session only writes whole frames).
fn first_frame(batch: &Bytes) -> Option<(usize, Bytes)> {
    let mut cursor = &batch[..];
    let len = usize::try_from(prost::encoding::decode_varint(&mut cursor).ok()?).ok()?;
    let prefix = batch.len() - cursor.remaining();
    (cursor.remaining() >= len).then(|| (prefix + len, batch.slice(prefix..prefix + len)))
}

impl LinkWriter for SessionWriter {
    async fn write(&mut self, batch: &Bytes) -> Result<usize, ConnectionError> {
        let peer = self.connection.peer_addr();
        let Some((first_len, first)) = first_frame(batch) else {
            return Err(ConnectionError::Protocol {
                peer: peer.to_string(),
                reason: "an outgoing batch did not start with a whole frame".into(),
            });
        };
        let connection = &self.connection;
        // The first envelope waits for room; those after it go while there
        // is room, so one write moves as much as fits.
        connection
            .wait_for(|state, _| connection.try_queue(state, Lane::Session, 0, &first))
            .await
            .map_err(|error| connection_error(peer, error))?;
        let mut written = first_len;
        while let Some((len, envelope)) = first_frame(&batch.slice(written..)) {
            let queued = connection
                .with_engine(|state, _| connection.try_queue(state, Lane::Session, 0, &envelope));
            match queued {
                Poll::Ready(Ok(())) => written += len,
                Poll::Ready(Err(error)) => return Err(connection_error(peer, error)),
                Poll::Pending => break,
            }
        }
        Ok(written)
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), ConnectionError> {
        self.connection.close(CLOSE_NORMAL, "closed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_at_their_length_prefix() {
        let batch = Bytes::from_static(&[3, b'a', b'b', b'c', 1, b'z', 5, b'x']);
        let (len, envelope) = first_frame(&batch).unwrap();
        assert_eq!((len, &envelope[..]), (4, &b"abc"[..]));
        let (len, envelope) = first_frame(&batch.slice(4..)).unwrap();
        assert_eq!((len, &envelope[..]), (2, &b"z"[..]));
        assert_eq!(first_frame(&batch.slice(6..)), None, "cut short");
    }
}
