//! TLS on loopback with a generated self-signed certificate: the one API
//! over `tcp::tls::Tls`, and what happens when the two ends disagree.

#![cfg(feature = "tls")]
#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protowright::net::Tokio;
use protowright::tcp::tls::Tls;
use protowright::{
    Client, ClientConfig, Connection, Error, Server, ServerConfig, ServerHandle, Transport,
};
use protowright_testing::pb::{Burst, Probe as _, ProbeClient, ProbeServer, Traffic};
use protowright_testing::{Probe, Stream};
use support::{LOOPBACK, payload};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{self, RootCertStore};

/// A self-signed certificate for `localhost`, and its key.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
    (generated.cert.der().clone(), key.into())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_tls(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Arc<rustls::ServerConfig> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

/// A client config trusting `trusted` (or nothing).
fn client_tls(trusted: Option<CertificateDer<'static>>) -> Tls<Tokio> {
    let mut roots = RootCertStore::empty();
    if let Some(cert) = trusted {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    Tls::client(Tokio, Arc::new(config), name)
}

/// A TLS server of a probe that pushes to its connections; returns its
/// address, handle, certificate, and the connections it accepts.
async fn tls_server() -> (
    SocketAddr,
    ServerHandle,
    CertificateDer<'static>,
    mpsc::UnboundedReceiver<Connection>,
) {
    let (cert, key) = certificate();
    let net = Tls::server(Tokio, server_tls(cert.clone(), key));
    let mut server = Server::bind(net, Transport::Tcp, LOOPBACK, ServerConfig::default())
        .await
        .unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    let (queue, accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let probe = Probe::default();
        while let Some(incoming) = server.accept().await {
            let connection = incoming.serve_with(|c| ProbeServer::new(probe.pushing_to(c)));
            let _ = queue.send(connection);
        }
    });
    (addr, handle, cert, accepted)
}

#[tokio::test]
async fn calls_and_messages_travel_encrypted_between_a_tls_client_and_server() {
    let (addr, _server, cert, mut accepted) = tls_server().await;
    let client = Client::connect(
        client_tls(Some(cert)),
        Transport::Tcp,
        addr,
        ClientConfig::default(),
    )
    .await
    .unwrap();
    let theirs = accepted.recv().await.unwrap();
    let probe = ProbeClient::new(client.clone());
    assert_eq!(probe.echo(payload(1, 100)).await, Ok(payload(1, 100)));
    client.send(Stream::OrderedB.message(0, 100)).await.unwrap();
    let message: Traffic = theirs.recv().await.unwrap().unwrap();
    assert_eq!(Stream::read(&message), Some((Stream::OrderedB, 0, true)));
    assert_eq!(
        probe
            .push(Burst {
                count: 1,
                size: 100
            })
            .await
            .map(|p| p.id),
        Ok(1)
    );
    let pushed: Traffic = client.recv().await.unwrap().unwrap();
    assert_eq!(Stream::read(&pushed), Some((Stream::OrderedA, 0, true)));
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_fails_to_connect_saying_why() {
    let (addr, _server, _cert, _) = tls_server().await;
    let started = Instant::now();
    let error = Client::connect(
        client_tls(None),
        Transport::Tcp,
        addr,
        ClientConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(error.to_string().contains("certificate"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_plaintext_client_gets_no_answer_from_a_tls_server_and_the_server_counts_it() {
    let (addr, server, _cert, _) = tls_server().await;
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(3),
        ..ClientConfig::default()
    };
    // TCP connects; the server's handshake then fails on what it reads, and
    // the connect's round trip never completes.
    let error = Client::connect(Tokio, Transport::Tcp, addr, config)
        .await
        .expect_err("no answer from a TLS server");
    assert!(
        matches!(error, protowright::Error::Connect { .. }),
        "{error}"
    );
    let started = Instant::now();
    while server.stats().failed == 0 && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.stats().failed, 1, "{:?}", server.stats());
}

#[tokio::test]
async fn a_tls_client_cannot_connect_to_a_plaintext_server() {
    let server = Server::bind(Tokio, Transport::Tcp, LOOPBACK, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.serve(ProbeServer::new(Probe::default())));
    let (cert, _key) = certificate();
    let started = Instant::now();
    let error = Client::connect(
        client_tls(Some(cert)),
        Transport::Tcp,
        addr,
        ClientConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2), "{error}");
}
