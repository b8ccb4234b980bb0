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

/// A peer that opens TCP to a TLS server and never speaks, in a turmoil
/// simulation (virtual time): the server drops it at the handshake timeout,
/// well before the session's 15 s dead-peer bound would, saying why.
#[test]
fn a_peer_that_never_speaks_tls_is_dropped_at_the_handshake_timeout() {
    use protowright_sim::Turmoil;
    use tokio::io::AsyncReadExt;

    const PORT: u16 = 9443;
    const LIMIT: Duration = Duration::from_secs(3);
    let now = || turmoil::sim_elapsed().unwrap_or_default();
    protowright_sim::reseed(3);
    let mut sim = turmoil::Builder::new()
        .rng_seed(3)
        .simulation_duration(Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(1))
        .build();
    let ended: Arc<std::sync::Mutex<Option<(String, Duration)>>> = Arc::default();
    let record = Arc::clone(&ended);
    sim.host("server", move || {
        let record = Arc::clone(&record);
        async move {
            let (cert, key) = certificate();
            let net = Tls::server(Turmoil, server_tls(cert, key))
                .with_handshake_timeout(LIMIT)
                .unwrap();
            let any: SocketAddr = (std::net::Ipv4Addr::UNSPECIFIED, PORT).into();
            let mut server =
                Server::bind(net, Transport::Tcp, any, ServerConfig::default()).await?;
            while let Some(incoming) = server.accept().await {
                let connection = incoming.serve(ProbeServer::new(Probe::default()));
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let error = connection.closed().await.unwrap_err();
                    *record.lock().unwrap() = Some((error.to_string(), now()));
                });
            }
            Ok(())
        }
    });
    let closed: Arc<std::sync::Mutex<Option<(Duration, Duration)>>> = Arc::default();
    let seen = Arc::clone(&closed);
    sim.client("silent", async move {
        let addr: SocketAddr = (turmoil::lookup("server"), PORT).into();
        let mut stream = turmoil::net::TcpStream::connect(addr).await?;
        let connected = now();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes).await;
        *seen.lock().unwrap() = Some((connected, now()));
        Ok(())
    });
    sim.run().unwrap();
    let (connected, closed) = closed.lock().unwrap().unwrap();
    let (error, _) = ended.lock().unwrap().clone().expect("the server ended it");
    let took = closed - connected;
    println!("silent peer dropped after {took:?} (handshake timeout {LIMIT:?}): {error}");
    assert!(
        took >= LIMIT - Duration::from_millis(5) && took <= LIMIT + Duration::from_millis(100),
        "dropped after {took:?}, not at the {LIMIT:?} handshake timeout"
    );
    assert!(error.contains("TLS handshake did not complete"), "{error}");
}

#[test]
fn a_handshake_timeout_that_could_overflow_a_deadline_is_refused() {
    let (cert, key) = certificate();
    let error = Tls::server(Tokio, server_tls(cert, key))
        .with_handshake_timeout(Duration::MAX)
        .unwrap_err();
    assert!(
        matches!(
            error,
            protowright::rpc::ConfigError::TooLong {
                setting: "handshake_timeout",
                ..
            }
        ),
        "{error}"
    );
}
