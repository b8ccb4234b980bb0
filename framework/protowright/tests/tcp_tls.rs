//! TLS on loopback with a generated self-signed certificate.

#![cfg(feature = "tls")]
// Test set-up code: a failure to build a certificate or config is a broken test.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protowright::Method;
use protowright::net::Tokio;
use protowright::rpc::{CallOptions, Channel, Code, Service, Status};
use protowright::tcp::tls::Tls;
use protowright::tcp::{Backoff, Client, ClientConfig, ConnectionState, Server, ServerConfig};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{self, RootCertStore};

const ECHO: Method = Method {
    id: 1,
    path: "/t.Echo/Echo",
    idempotent: true,
};

struct Echo;

impl Service for Echo {
    async fn call(&self, _method: u32, request: Bytes) -> Result<Bytes, Status> {
        Ok(request)
    }
}

/// A self-signed certificate for `localhost`, and its key.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
    (generated.cert.der().clone(), key.into())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(
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

fn client_config(trusted: Option<CertificateDer<'static>>) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    if let Some(cert) = trusted {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

async fn tls_server() -> (SocketAddr, CertificateDer<'static>) {
    let (cert, key) = certificate();
    let net = Tls::server(Tokio, server_config(cert.clone(), key));
    let server = Server::bind(
        net,
        (Ipv4Addr::LOCALHOST, 0).into(),
        Echo,
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run());
    (addr, cert)
}

fn quick_give_up() -> ClientConfig {
    ClientConfig {
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max_attempts: Some(2),
            ..Backoff::default()
        },
        seed: Some(3),
        ..ClientConfig::default()
    }
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

#[tokio::test]
async fn calls_travel_encrypted_between_a_tls_client_and_server() {
    let (addr, cert) = tls_server().await;
    let net = Tls::client(Tokio, client_config(Some(cert)), localhost());
    let client = Client::connect(net, addr, ClientConfig::default()).unwrap();
    let reply = client
        .call(&ECHO, Bytes::from_static(b"secret"), CallOptions::default())
        .await;
    assert_eq!(reply, Ok(Bytes::from_static(b"secret")));
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let (addr, _cert) = tls_server().await;
    let net = Tls::client(Tokio, client_config(None), localhost());
    let client = Client::connect(net, addr, quick_give_up()).unwrap();
    let status = client
        .call(&ECHO, Bytes::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let state = client
        .watch_state()
        .wait_for(|s| matches!(s, ConnectionState::GaveUp { .. }))
        .await
        .unwrap()
        .clone();
    let ConnectionState::GaveUp { last_error } = state else {
        unreachable!()
    };
    assert!(last_error.contains("certificate"), "{last_error}");
}

#[tokio::test]
async fn a_plaintext_client_cannot_talk_to_a_tls_server() {
    let (addr, _cert) = tls_server().await;
    let mut config = quick_give_up();
    config.session.dead_peer_timeout = Some(Duration::from_secs(2));
    config.session.heartbeat_interval = Some(Duration::from_millis(500));
    let client = Client::connect(Tokio, addr, config).unwrap();
    let status = client
        .call(
            &ECHO,
            Bytes::new(),
            CallOptions {
                timeout: Some(Duration::from_secs(3)),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{status}"
    );
}
