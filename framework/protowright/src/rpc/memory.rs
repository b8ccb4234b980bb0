//! The in-memory harness: a client wired to a service with no sockets.
//!
//! The two ends speak the real protocol (framing, envelopes, deadlines)
//! over an in-memory pipe, so a test through it exercises everything but the
//! socket. Generated clients offer it as `in_memory(service)`.

use super::{Client, Config, NoService, Service, Session};

/// Serves `service` on one end of an in-memory pipe and returns a client for
/// the other end.
///
/// The service runs until every clone of the returned client is dropped.
/// Must be called inside a tokio runtime.
pub fn connect<S: Service>(service: S, config: Config) -> Client {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let server = Session::spawn(server_end, "in-memory client", service, config.clone());
    tokio::spawn(async move {
        if let Err(error) = server.closed().await {
            tracing::debug!(%error, "in-memory server session ended with an error");
        }
    });
    Session::spawn(client_end, "in-memory server", NoService, config).client()
}
