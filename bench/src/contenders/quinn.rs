//! The quinn contenders, QUIC over quinn 0.11:
//!
//! - `quinn` and `quinn-bbr`: one stream, with quinn's default congestion
//!   control (CUBIC) or its BBR. Their `msgs64` writes 64-byte records to
//!   one stream unframed and counts received bytes / 64: quinn's bulk rate
//!   in small writes, not a message rate (nothing is split or decoded). The
//!   harness shows it but does not count it as a peer there.
//! - `quinn-framed`: `msgs64` and `rtt64` as prost `Payload` messages
//!   behind a length prefix (tokio-util's `LengthDelimitedCodec`) on one
//!   stream, split and decoded one by one at the receiver
//!   (`quinn_framed`): the message rate a user of quinn gets.
//! - `quinn-datagram`: `msgs64-unreliable` as QUIC DATAGRAM frames
//!   (`quinn_datagram`).
//! - `quinn-jumbo`: quinn-framed's message workloads and quinn's bulk,
//!   with MTU discovery allowed up to 16 KiB (quinn stops at 1452 bytes by
//!   default; protowright probes up to 16 KiB).
//!
//! The server's self-signed
//! certificate reaches the client through a file in the temporary
//! directory (the harness runs one pair at a time; the client may reach
//! the server through a relay, so the file cannot be named after the port).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use quinn::congestion::BbrConfig;
use quinn::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use quinn::{ClientConfig, Endpoint, MtuDiscoveryConfig, ServerConfig, TransportConfig};
use tokio::time::Instant;

use super::bulk::{self, Received};
use super::{Meter, Sampler, memory, quinn_datagram, quinn_framed, ready};
use crate::{Amount, Report, Workload};

/// Which congestion controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Cubic,
    Bbr,
}

/// How the message workloads travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// 64-byte records on one stream, counted as bytes / 64.
    Unframed,
    /// Length-prefixed prost messages on one stream, decoded one by one.
    Framed,
    /// Prost messages in QUIC DATAGRAM frames, one message per frame.
    Datagrams,
}

/// One quinn contender: its congestion controller, its framing, and
/// whether MTU discovery may go up to 16 KiB.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flavor {
    control: Control,
    framing: Framing,
    jumbo: bool,
}

impl Flavor {
    /// The flavor a contender's name stands for.
    pub(super) fn named(name: &str) -> anyhow::Result<Self> {
        let (control, framing, jumbo) = match name {
            "quinn" => (Control::Cubic, Framing::Unframed, false),
            "quinn-bbr" => (Control::Bbr, Framing::Unframed, false),
            "quinn-framed" => (Control::Cubic, Framing::Framed, false),
            "quinn-datagram" => (Control::Cubic, Framing::Datagrams, false),
            "quinn-jumbo" => (Control::Cubic, Framing::Framed, true),
            other => anyhow::bail!("`{other}` is not a quinn contender"),
        };
        Ok(Self {
            control,
            framing,
            jumbo,
        })
    }

    fn transport(self) -> Arc<TransportConfig> {
        let mut transport = TransportConfig::default();
        if self.control == Control::Bbr {
            transport.congestion_controller_factory(Arc::new(BbrConfig::default()));
        }
        if self.jumbo {
            // Discovery starts at quinn's 1200 bytes and probes upward, so
            // a path with a smaller MTU (the loss namespace's 1500) still
            // works; loopback settles near the bound.
            let mut discovery = MtuDiscoveryConfig::default();
            discovery.upper_bound(16 * 1024);
            transport.mtu_discovery_config(Some(discovery));
        }
        if self.framing == Framing::Datagrams {
            // On in quinn by default; stated here because the workload
            // depends on it. The receive buffer holds what the reader has
            // not taken yet (quinn drops the oldest beyond it); the sender
            // waits for room in its buffer rather than dropping
            // (`send_datagram_wait`).
            transport.datagram_receive_buffer_size(Some(4 * 1024 * 1024));
            transport.datagram_send_buffer_size(1024 * 1024);
        }
        Arc::new(transport)
    }
}

fn cert_path() -> PathBuf {
    std::env::temp_dir().join("protowright-bench-quinn.der")
}

fn provider() {
    let _ = quinn::rustls::crypto::ring::default_provider().install_default();
}

const MESSAGE: [u8; 64] = [0x5a; 64];

pub(super) async fn serve(
    flavor: Flavor,
    workload: Workload,
    amount: Amount,
) -> anyhow::Result<()> {
    provider();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert: CertificateDer<'static> = generated.cert.der().clone();
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let mut config = ServerConfig::with_single_cert(vec![cert.clone()], key)?;
    config.transport_config(flavor.transport());
    let endpoint = Endpoint::server(config, (Ipv4Addr::LOCALHOST, 0).into())?;
    let addr = endpoint.local_addr()?;
    let path = cert_path();
    std::fs::write(&path, cert.as_ref())?;
    let baseline = memory::resident_bytes()?;
    ready(addr);
    let result = serve_on(&endpoint, flavor, workload, amount, baseline).await;
    let _ = std::fs::remove_file(path);
    result
}

async fn serve_on(
    endpoint: &Endpoint,
    flavor: Flavor,
    workload: Workload,
    amount: Amount,
    baseline: u64,
) -> anyhow::Result<()> {
    if workload == Workload::Conns10k {
        let accepting = endpoint.clone();
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let holder = held.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                if let Ok(connection) = incoming.await {
                    holder
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(connection);
                }
            }
        });
        memory::report_when_connected(amount.connections, baseline, move || {
            held.lock().unwrap_or_else(|e| e.into_inner()).len()
        })
        .await?;
        // Tell the clients, so they stop at once rather than at their
        // idle timeout.
        endpoint.close(0u32.into(), b"measured");
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        return Ok(());
    }
    let connection = endpoint.accept().await.context("no client came")?.await?;
    match (workload, flavor.framing) {
        (Workload::Msgs64 | Workload::Rtt64, Framing::Framed) => {
            quinn_framed::serve(&connection, workload).await?;
        }
        (Workload::Msgs64Unreliable, Framing::Datagrams) => {
            quinn_datagram::receive(&connection).await?;
        }
        (Workload::Msgs64, Framing::Unframed) => {
            let mut stream = connection.accept_uni().await?;
            let mut meter = Meter::default();
            let mut carried = 0usize;
            while let Some(chunk) = stream.read_chunk(usize::MAX, true).await? {
                let bytes = carried + chunk.bytes.len();
                meter.add((bytes / MESSAGE.len()) as u64);
                carried = bytes % MESSAGE.len();
            }
            meter.finish();
            meter.report().print();
        }
        (Workload::Rtt64, Framing::Unframed) => {
            let (mut send, mut recv) = connection.accept_bi().await?;
            let mut buf = [0u8; 64];
            while recv.read_exact(&mut buf).await.is_ok() {
                send.write_all(&buf).await?;
            }
        }
        (Workload::Bulk, _) => {
            let mut stream = connection.accept_uni().await?;
            let mut received = Received::default();
            while let Some(chunk) = stream.read_chunk(usize::MAX, true).await? {
                received.add(&chunk.bytes);
            }
            received.report().print();
        }
        (Workload::Conns10k, _) => {}
        _ => anyhow::bail!("this quinn contender has no {workload:?} workload"),
    }
    connection.closed().await;
    Ok(())
}

pub(super) async fn drive(
    flavor: Flavor,
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    provider();
    let cert = std::fs::read(cert_path()).context("the server's certificate")?;
    let mut roots = quinn::rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert))?;
    let mut config = ClientConfig::with_root_certificates(Arc::new(roots))?;
    config.transport_config(flavor.transport());
    let mut endpoint = Endpoint::client((Ipv4Addr::LOCALHOST, 0).into())?;
    endpoint.set_default_client_config(config);
    if workload == Workload::Conns10k {
        let endpoint = &endpoint;
        let connections = memory::open_all(amount.connections, || async move {
            Ok(endpoint.connect(addr, "localhost")?.await?)
        })
        .await?;
        if let Some(first) = connections.first() {
            let _ = tokio::time::timeout(Duration::from_secs(60), first.closed()).await;
        }
        return Ok(());
    }
    let connection = endpoint.connect(addr, "localhost")?.await?;
    match (workload, flavor.framing) {
        (Workload::Msgs64 | Workload::Rtt64, Framing::Framed) => {
            quinn_framed::drive(&connection, workload, amount.duration).await?;
        }
        (Workload::Msgs64Unreliable, Framing::Datagrams) => {
            quinn_datagram::send(&connection, amount.duration).await?;
        }
        (Workload::Msgs64, Framing::Unframed) => {
            let mut stream = connection.open_uni().await?;
            let batch = MESSAGE.repeat(256);
            let end = Instant::now() + amount.duration;
            while Instant::now() < end {
                stream.write_all(&batch).await?;
            }
            stream.finish()?;
            stream.stopped().await?;
        }
        (Workload::Rtt64, Framing::Unframed) => {
            let (mut send, mut recv) = connection.open_bi().await?;
            let mut buf = [0u8; 64];
            let mut sampler = Sampler::new(amount.duration);
            while sampler.more() {
                let started = Instant::now();
                send.write_all(&MESSAGE).await?;
                recv.read_exact(&mut buf).await?;
                sampler.record(started);
            }
            sampler.report().print();
            send.finish()?;
        }
        (Workload::Bulk, _) => {
            let expected = bulk::expected(amount.bytes);
            let mut stream = connection.open_uni().await?;
            for chunk in bulk::chunks(amount.bytes) {
                stream.write_chunk(chunk).await?;
            }
            stream.finish()?;
            stream.stopped().await?;
            Report::Sent {
                bytes: expected.bytes(),
                checksum: expected.value(),
            }
            .print();
        }
        (Workload::Conns10k, _) => {}
        _ => anyhow::bail!("this quinn contender has no {workload:?} workload"),
    }
    connection.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok(())
}
