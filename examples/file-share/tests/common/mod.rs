//! What the tests share: shared directories with known contents, servers
//! on loopback, a recording progress sink, and servers that misbehave.

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use file_share::pb::{
    Chunk, ChunkRequest, FileShare, ListReply, ListRequest, Manifest, ManifestRequest,
};
use file_share::{Event, GetConfig, Progress, Running, Share, ShareConfig};
use protowright::Transport;
use protowright::net::Tokio;
use protowright::rpc::Status;
use tokio::sync::watch;

/// The chunk size the tests share with: small, so files have many chunks.
pub const CHUNK: u32 = 64 * 1024;

/// `len` pseudo-random bytes, different for each `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes `files` (name, contents) under `dir`, creating subdirectories.
pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, data) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the directories");
        }
        std::fs::write(path, data).expect("write a shared file");
    }
}

/// The share settings of the tests: 64 KiB chunks.
pub fn share_config() -> ShareConfig {
    ShareConfig {
        chunk_size: CHUNK,
        ..ShareConfig::default()
    }
}

/// Shares `dir` on a loopback port over `transport`.
pub async fn serve(transport: Transport, dir: &Path) -> Running {
    let addr = (Ipv4Addr::LOCALHOST, 0).into();
    file_share::serve(Tokio, transport, addr, dir, share_config())
        .await
        .expect("start the server")
}

/// Serves `service` (a wrapper around a real share) on a loopback port.
pub async fn serve_wrapped<S: FileShare>(transport: Transport, service: Arc<S>) -> SocketAddr {
    let addr = (Ipv4Addr::LOCALHOST, 0).into();
    let config = share_config().server;
    let (addr, _handle) = file_share::serve_service(Tokio, transport, addr, config, service)
        .await
        .expect("start the server");
    addr
}

/// Download settings for tests: a short retry period.
pub fn get_config() -> GetConfig {
    GetConfig {
        retry_for: Duration::from_secs(10),
        ..GetConfig::default()
    }
}

/// Records every event, and counts verified chunks on a watch channel.
#[derive(Debug)]
pub struct Recorder {
    events: Mutex<Vec<(String, Event)>>,
    chunks: watch::Sender<u64>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            events: Mutex::default(),
            chunks: watch::Sender::new(0),
        })
    }

    /// Everything reported so far.
    pub fn events(&self) -> Vec<(String, Event)> {
        self.events.lock().expect("events").clone()
    }

    /// The notes reported for `name`.
    pub fn notes(&self, name: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|(n, e)| match e {
                Event::Note(text) if n == name => Some(text),
                _ => None,
            })
            .collect()
    }

    /// Waits (at most 30 s) until `count` chunks have verified.
    pub async fn wait_for_chunks(&self, count: u64) {
        let mut chunks = self.chunks.subscribe();
        tokio::time::timeout(Duration::from_secs(30), chunks.wait_for(|n| *n >= count))
            .await
            .expect("the chunks arrive in time")
            .expect("the recorder lives");
    }

    /// The most files that were between `Started` and their end at once.
    pub fn most_at_once(&self) -> usize {
        let mut running = 0usize;
        let mut most = 0;
        for (_, event) in self.events() {
            match event {
                Event::Started { .. } => running += 1,
                Event::Done | Event::Failed(_) => running = running.saturating_sub(1),
                _ => {}
            }
            most = most.max(running);
        }
        most
    }
}

impl Progress for Recorder {
    fn event(&self, name: &str, event: Event) {
        if matches!(event, Event::Chunk { .. }) {
            self.chunks.send_modify(|n| *n += 1);
        }
        self.events
            .lock()
            .expect("events")
            .push((name.to_owned(), event));
    }
}

/// A share that lies, for the client's defences: it renames its manifests,
/// or flips a byte of one chunk a number of times.
pub struct Liar {
    pub inner: Share,
    /// The name its manifests claim, if set.
    pub manifest_name: Option<String>,
    /// The chunk it corrupts, and how many more times it will.
    pub corrupt: Option<(u32, AtomicU32)>,
    /// How many times it sent a corrupt chunk.
    pub lies: AtomicU64,
}

impl Liar {
    pub fn new(dir: &Path) -> Self {
        Self {
            inner: Share::new(dir, &share_config()).expect("share"),
            manifest_name: None,
            corrupt: None,
            lies: AtomicU64::new(0),
        }
    }
}

impl FileShare for Liar {
    async fn list(&self, request: ListRequest) -> Result<ListReply, Status> {
        self.inner.list(request).await
    }

    async fn get_manifest(&self, request: ManifestRequest) -> Result<Manifest, Status> {
        let mut manifest = self.inner.get_manifest(request).await?;
        if let Some(name) = &self.manifest_name {
            manifest.name = name.clone();
        }
        Ok(manifest)
    }

    async fn read_chunk(&self, request: ChunkRequest) -> Result<Chunk, Status> {
        let mut chunk = self.inner.read_chunk(request).await?;
        if let Some((index, remaining)) = &self.corrupt
            && chunk.index == *index
            && remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        {
            let mut data = chunk.data.to_vec();
            data[100] ^= 0x01;
            chunk.data = data.into();
            self.lies.fetch_add(1, Ordering::Relaxed);
        }
        Ok(chunk)
    }
}

/// A share that serves `allow` chunks, then never answers another chunk
/// call: a transfer stopped half-way, for the resume tests.
pub struct Gate {
    pub inner: Share,
    pub allow: AtomicU64,
}

impl FileShare for Gate {
    async fn list(&self, request: ListRequest) -> Result<ListReply, Status> {
        self.inner.list(request).await
    }

    async fn get_manifest(&self, request: ManifestRequest) -> Result<Manifest, Status> {
        self.inner.get_manifest(request).await
    }

    async fn read_chunk(&self, request: ChunkRequest) -> Result<Chunk, Status> {
        let admitted = self
            .allow
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if !admitted {
            std::future::pending::<()>().await;
        }
        self.inner.read_chunk(request).await
    }
}

/// The files under `dir` (recursively, hidden ones included), relative.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next)
            .expect("read the directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// A share that takes a while over each chunk and counts how many chunk
/// calls it is serving at once.
pub struct Meter {
    pub inner: Share,
    pub in_progress: std::sync::atomic::AtomicUsize,
    pub most: std::sync::atomic::AtomicUsize,
}

impl Meter {
    pub fn new(dir: &Path) -> Self {
        Self {
            inner: Share::new(dir, &share_config()).expect("share"),
            in_progress: Default::default(),
            most: Default::default(),
        }
    }
}

impl FileShare for Meter {
    async fn list(&self, request: ListRequest) -> Result<ListReply, Status> {
        self.inner.list(request).await
    }

    async fn get_manifest(&self, request: ManifestRequest) -> Result<Manifest, Status> {
        self.inner.get_manifest(request).await
    }

    async fn read_chunk(&self, request: ChunkRequest) -> Result<Chunk, Status> {
        let now = self.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let chunk = self.inner.read_chunk(request).await;
        self.in_progress.fetch_sub(1, Ordering::SeqCst);
        chunk
    }
}
