//! Running a share on either transport.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use protowright::net::Net;
use protowright::{Server, ServerConfig, ServerHandle, Transport};

use super::{Share, ShareConfig, ShareStats};
use crate::pb::{FileShare, FileShareServer};

/// A running server.
#[derive(Debug, Clone)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Shuts it down and observes its connections.
    pub handle: ServerHandle,
    /// The service's counters.
    pub stats: Arc<ShareStats>,
    /// The shared directory (canonical).
    pub root: PathBuf,
}

/// Shares `dir` on `addr` over `net` and `transport`, on a task of its own.
pub async fn serve<N: Net>(
    net: N,
    transport: Transport,
    addr: SocketAddr,
    dir: &Path,
    config: ShareConfig,
) -> anyhow::Result<Running> {
    let share = Share::new(dir, &config)?;
    serve_service(net, transport, addr, config.server, Arc::new(share.clone()))
        .await
        .map(|(addr, handle)| Running {
            addr,
            handle,
            stats: share.stats(),
            root: share.root().to_owned(),
        })
}

/// Serves any [`FileShare`] implementation (the real [`Share`], or a test's
/// wrapper around it) on `addr`, on a task of its own.
pub async fn serve_service<N: Net, S: FileShare>(
    net: N,
    transport: Transport,
    addr: SocketAddr,
    config: ServerConfig,
    service: Arc<S>,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let server = Server::bind(net, transport, addr, config).await?;
    let bound = server.local_addr();
    let handle = server.handle();
    tokio::spawn(server.serve(FileShareServer::from_arc(service)));
    Ok((bound, handle))
}
