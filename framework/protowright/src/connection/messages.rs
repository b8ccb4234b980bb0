//! A connection's protocol messages as a stream its reader owns.

use std::collections::VecDeque;
use std::marker::PhantomData;

use bytes::Bytes;

use super::{Connection, Path};
use crate::error::RecvError;
use crate::schema::Protocol;

/// The protocol root `P`'s messages on one connection, taken in batches:
/// made by [`Connection::messages`].
///
/// Over TCP (and in memory) it moves every message waiting in the
/// connection's inbox into a buffer of its own under one lock, then hands
/// them out one by one with no shared state touched; the inbox's bound
/// applies to each batch, so at most twice the configured messages are
/// held. Over reliable UDP it takes them one by one, as
/// [`Connection::recv`] does.
#[derive(Debug)]
pub struct Messages<P> {
    connection: Connection,
    batch: VecDeque<Bytes>,
    root: PhantomData<fn() -> P>,
}

impl<P: Protocol> Messages<P> {
    pub(super) fn new(connection: Connection) -> Self {
        Self {
            connection,
            batch: VecDeque::new(),
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
            Path::Udp(raw) => match raw.recv().await {
                Ok(message) => message.data,
                Err(error) => return connection.udp_end(error),
            },
        };
        connection.decode_root(body).map(Some)
    }

    /// The connection these messages come from.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}
