//! The in-memory harness: a connection to a service with no sockets.
//!
//! The two ends speak the real protocol (framing, envelopes, deadlines,
//! messages) over an in-memory pipe, so a test through it exercises
//! everything but the socket. Generated clients offer it as
//! `FooClient::in_memory(service)`.

use crate::connection::Connection;
use crate::rpc::{Config, NoService, Service};

/// Serves `service` on one end of an in-memory pipe and returns a
/// connection to it from the other end.
///
/// The service's end runs until the returned connection (every clone) is
/// dropped or closed. Must be called inside a tokio runtime.
pub fn connect<S: Service>(service: S, config: Config) -> Connection {
    connect_with(config, |_| service)
}

/// Like [`connect`], with the service built from the server's end of the
/// connection, so it can push messages to the client.
pub fn connect_with<S: Service>(
    config: Config,
    make_service: impl FnOnce(&Connection) -> S,
) -> Connection {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let server = Connection::over_stream(
        server_end,
        "in-memory client".to_owned(),
        None,
        config.clone(),
        make_service,
    );
    tokio::spawn(async move {
        if let Err(error) = server.closed().await {
            tracing::debug!(%error, "in-memory server session ended with an error");
        }
    });
    Connection::over_stream(
        client_end,
        "in-memory server".to_owned(),
        None,
        config,
        |_| NoService,
    )
}
