//! A connection's protocol messages as a stream its reader owns.

use std::collections::VecDeque;
use std::marker::PhantomData;

use bytes::Bytes;

use super::{Connection, Path};
use crate::error::RecvError;
use crate::schema::Protocol;
use crate::udp;

/// The most messages taken from a reliable-UDP connection at once: the
/// stream holds at most this many whose flow-control credit went back.
const UDP_BATCH: usize = 256;

/// The protocol root `P`'s messages on one connection, taken in batches:
/// made by [`Connection::messages`].
///
/// Over TCP (and in memory) it moves every message waiting in the
/// connection's inbox into a buffer of its own under one lock, then hands
/// them out one by one with no shared state touched; the inbox's bound
/// applies to each batch, so at most twice the configured messages are
/// held. Over reliable UDP it takes up to 256 at a time from the engine,
/// under one lock, giving their flow-control credit back as it takes them.
#[derive(Debug)]
pub struct Messages<P> {
    connection: Connection,
    batch: VecDeque<Bytes>,
    /// Over reliable UDP: messages taken from the engine, not yet returned.
    datagrams: VecDeque<udp::Message>,
    root: PhantomData<fn() -> P>,
}

impl<P: Protocol> Messages<P> {
    pub(super) fn new(connection: Connection) -> Self {
        Self {
            connection,
            batch: VecDeque::new(),
            datagrams: VecDeque::new(),
            root: PhantomData,
        }
    }

    /// The next message: `Ok(Some(message))`, then `Ok(None)` once the
    /// connection has closed cleanly and every message that arrived before
    /// was returned, or [`RecvError::Closed`] when it ended with an error
    /// (as [`Connection::recv`]).
    pub async fn next(&mut self) -> Result<Option<P>, RecvError> {
        let connection = &self.connection;
        let body = match &connection.inner.path {
            Path::Session { .. } => {
                if self.batch.is_empty()
                    && !connection
                        .inner
                        .session
                        .recv_messages(&mut self.batch)
                        .await
                {
                    return connection.session_end();
                }
                match self.batch.pop_front() {
                    Some(body) => body,
                    None => return connection.session_end(),
                }
            }
            Path::Udp(raw) => {
                if self.datagrams.is_empty()
                    && let Err(error) = raw.recv_many(&mut self.datagrams, UDP_BATCH).await
                {
                    return connection.udp_end(error);
                }
                match self.datagrams.pop_front() {
                    Some(message) => message.data,
                    None => return connection.session_end(),
                }
            }
        };
        connection.decode_root(body).map(Some)
    }

    /// The connection these messages come from.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}
