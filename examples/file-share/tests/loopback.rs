//! The real behaviour on loopback, over TCP and over reliable UDP with the
//! same code: concurrent verified downloads, the listing, typed refusals,
//! corrupt chunks caught, and resumes that fetch only what is missing.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use common::{
    CHUNK, Gate, Liar, Meter, Recorder, files_under, get_config, pattern, serve, serve_wrapped,
    write_files,
};
use file_share::digest::sha256;
use file_share::fetch::MAX_BAD_CHUNK;
use file_share::pb::{ChunkRequest, FileShare as _, FileShareClient, ManifestRequest};
use file_share::{FetchError, GetConfig, Share, Summary, get};
use protowright::net::Tokio;
use protowright::rpc::Code;
use protowright::{Client, ClientConfig, Transport};
use tokio::task::JoinHandle;

/// Runs `$test(transport)` once over TCP and once over reliable UDP.
macro_rules! both_transports {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn over_tcp() {
                super::$test(protowright::Transport::Tcp).await;
            }
            #[tokio::test]
            async fn over_udp() {
                super::$test(protowright::Transport::Udp).await;
            }
        }
    )*};
}

both_transports!(
    several_files_arrive_at_once_byte_identical,
    chunk_calls_are_pipelined_up_to_the_window_and_no_further,
    the_listing_shows_each_files_name_size_and_hash,
    a_missing_file_fails_not_found_and_the_others_still_arrive,
    names_leading_out_of_the_share_are_refused_by_the_server,
    the_client_writes_nothing_outside_out_whatever_it_is_asked_or_told,
    a_corrupted_chunk_is_caught_and_never_written_under_the_final_name,
    a_chunk_corrupted_once_is_fetched_again_and_the_file_verifies,
    an_interrupted_download_resumes_fetching_only_missing_or_bad_chunks,
    a_partial_download_of_a_file_that_changed_starts_over_and_says_so,
);

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

fn assert_verified(summary: &Summary) {
    let failures: Vec<String> = summary
        .failures()
        .map(|(name, error)| format!("{name}: {error}"))
        .collect();
    assert!(summary.all_verified(), "{summary}: {failures:?}");
}

async fn several_files_arrive_at_once_byte_identical(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    let big = pattern(1 << 20 | 123, 1);
    let notes = pattern(200_000, 2);
    let exact = pattern(2 * CHUNK as usize, 3);
    write_files(
        share.path(),
        &[
            ("big.bin", &big),
            ("docs/notes.txt", &notes),
            ("exact.bin", &exact),
            ("empty", b""),
        ],
    );
    let running = serve(transport, share.path()).await;
    let out = tempfile::tempdir().expect("out dir");
    let recorder = Recorder::new();
    let wanted = names(&["big.bin", "docs/notes.txt", "exact.bin", "empty"]);
    let summary = get(
        Tokio,
        transport,
        running.addr,
        &wanted,
        out.path(),
        get_config(),
        recorder.clone(),
    )
    .await
    .expect("connect");

    assert_verified(&summary);
    for (name, data) in [
        ("big.bin", &big),
        ("docs/notes.txt", &notes),
        ("exact.bin", &exact),
    ] {
        assert!(
            std::fs::read(out.path().join(name)).expect("read") == *data,
            "{name} differs"
        );
    }
    assert!(
        std::fs::read(out.path().join("empty"))
            .expect("read")
            .is_empty()
    );
    // No partial files or kept manifests are left behind.
    assert_eq!(
        files_under(out.path()),
        ["big.bin", "docs/notes.txt", "empty", "exact.bin"]
    );
    assert!(
        recorder.most_at_once() >= 2,
        "the files downloaded one after another"
    );
    // Each chunk crossed the network once: 17 + 4 + 2 + 0.
    assert_eq!(running.stats.snapshot().chunks, 23);
    let fetched: u64 = summary
        .files
        .iter()
        .map(|f| f.result.as_ref().map_or(0, |f| f.chunks_fetched))
        .sum();
    assert_eq!(fetched, 23, "{summary}");
}

async fn chunk_calls_are_pipelined_up_to_the_window_and_no_further(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    let (a, b) = (
        pattern(16 * CHUNK as usize, 1),
        pattern(16 * CHUNK as usize, 2),
    );
    write_files(share.path(), &[("a.bin", &a), ("b.bin", &b)]);
    let meter = Arc::new(Meter::new(share.path()));
    let addr = serve_wrapped(transport, Arc::clone(&meter)).await;
    let out = tempfile::tempdir().expect("out dir");
    let config = GetConfig {
        window: 4,
        per_file: 3,
        ..get_config()
    };
    let wanted = names(&["a.bin", "b.bin"]);
    let summary = get(
        Tokio,
        transport,
        addr,
        &wanted,
        out.path(),
        config,
        Recorder::new(),
    )
    .await
    .expect("connect");

    assert_verified(&summary);
    // Several chunk calls were in flight at once (not one round trip per
    // chunk), and never more than the client-wide window: 4 chunks of
    // 64 KiB is all the chunk data this client held.
    assert_eq!(meter.most.load(Ordering::SeqCst), 4);
    assert!(std::fs::read(out.path().join("b.bin")).expect("read") == b);
}

async fn the_listing_shows_each_files_name_size_and_hash(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    let outside = tempfile::tempdir().expect("outside dir");
    let a = pattern(1000, 1);
    let b = pattern(300_000, 2);
    write_files(share.path(), &[("a.txt", &a), ("docs/b.bin", &b)]);
    write_files(outside.path(), &[("secret", b"not shared")]);
    symlink(Path::new("a.txt"), &share.path().join("link-to-a"));
    symlink(&outside.path().join("secret"), &share.path().join("escape"));
    let running = serve(transport, share.path()).await;

    let client = Client::connect(Tokio, transport, running.addr, ClientConfig::default())
        .await
        .expect("connect");
    let files = file_share::list(&FileShareClient::new(client.clone()))
        .await
        .expect("list");
    client.close();

    let listed: Vec<(String, u64, Vec<u8>)> = files
        .into_iter()
        .map(|f| (f.name, f.size, f.sha256.to_vec()))
        .collect();
    assert_eq!(
        listed,
        [
            ("a.txt".to_owned(), 1000, sha256(&a).to_vec()),
            ("docs/b.bin".to_owned(), 300_000, sha256(&b).to_vec()),
            ("link-to-a".to_owned(), 1000, sha256(&a).to_vec()),
        ],
        "the symlink leading out is not listed"
    );
}

async fn a_missing_file_fails_not_found_and_the_others_still_arrive(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    let a = pattern(100_000, 1);
    write_files(share.path(), &[("a.txt", &a)]);
    let running = serve(transport, share.path()).await;
    let out = tempfile::tempdir().expect("out dir");
    let wanted = names(&["a.txt", "missing.txt"]);
    let summary = get(
        Tokio,
        transport,
        running.addr,
        &wanted,
        out.path(),
        get_config(),
        Recorder::new(),
    )
    .await
    .expect("connect");

    assert!(!summary.all_verified());
    assert!(summary.files[0].result.is_ok(), "{summary}");
    match &summary.files[1].result {
        Err(FetchError::NotFound(status)) => {
            assert_eq!(status.code(), Code::NotFound);
            assert_eq!(
                status.message(),
                "no file named `missing.txt` is shared here"
            );
        }
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
    assert_eq!(files_under(out.path()), ["a.txt"]);
}

async fn names_leading_out_of_the_share_are_refused_by_the_server(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    let outside = tempfile::tempdir().expect("outside dir");
    write_files(share.path(), &[("docs/a.txt", b"shared")]);
    write_files(outside.path(), &[("secret", b"not shared")]);
    symlink(&outside.path().join("secret"), &share.path().join("escape"));
    symlink(outside.path(), &share.path().join("escape-dir"));
    let running = serve(transport, share.path()).await;
    let client = Client::connect(Tokio, transport, running.addr, ClientConfig::default())
        .await
        .expect("connect");
    let share_client = FileShareClient::new(client.clone());

    let secret = outside.path().join("secret").display().to_string();
    let refusals = [
        ("../secret", Code::InvalidArgument),
        ("docs/../../secret", Code::InvalidArgument),
        (secret.as_str(), Code::InvalidArgument),
        ("/etc/passwd", Code::InvalidArgument),
        ("docs", Code::InvalidArgument),
        ("escape", Code::PermissionDenied),
        ("escape-dir/secret", Code::PermissionDenied),
    ];
    for (name, code) in refusals {
        let manifest = share_client
            .get_manifest(ManifestRequest {
                name: name.into(),
                ..Default::default()
            })
            .await;
        let status = manifest.expect_err(name);
        assert_eq!(status.code(), code, "manifest of {name}: {status}");
        assert!(
            status.message().contains("refused") || status.message().contains("not a regular file"),
            "{status}"
        );
        let chunk = share_client
            .read_chunk(ChunkRequest {
                name: name.into(),
                sha256: vec![0; 32].into(),
                index: 0,
            })
            .await;
        assert_eq!(chunk.expect_err(name).code(), code, "chunk of {name}");
    }
    client.close();
    let stats = running.stats.snapshot();
    assert_eq!((stats.refused, stats.chunks, stats.manifests), (14, 0, 0));
}

async fn the_client_writes_nothing_outside_out_whatever_it_is_asked_or_told(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    write_files(
        share.path(),
        &[("a.txt", b"shared"), ("docs/b.txt", b"shared too")],
    );
    let parent = tempfile::tempdir().expect("parent of out");
    let out = parent.path().join("out");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    std::fs::create_dir(&out).expect("out");
    // A symlink planted in --out that leads elsewhere.
    symlink(elsewhere.path(), &out.join("docs"));

    // Told: a server whose manifests name a file outside --out.
    let liar = Liar {
        manifest_name: Some("../evil".into()),
        ..Liar::new(share.path())
    };
    let lying = serve_wrapped(transport, Arc::new(liar)).await;
    let told = get(
        Tokio,
        transport,
        lying,
        &names(&["a.txt"]),
        &out,
        get_config(),
        Recorder::new(),
    )
    .await
    .expect("connect");
    assert!(
        matches!(&told.files[0].result, Err(FetchError::BadManifest(why)) if why.contains("../evil")),
        "{:?}",
        told.files[0].result
    );

    // Asked: names that lead out, and a name through the planted symlink.
    let running = serve(transport, share.path()).await;
    let asked = names(&["../evil", "/tmp/evil", "docs/b.txt"]);
    let summary = get(
        Tokio,
        transport,
        running.addr,
        &asked,
        &out,
        get_config(),
        Recorder::new(),
    )
    .await
    .expect("connect");
    assert!(
        matches!(summary.files[0].result, Err(FetchError::BadName(_))),
        "{summary:?}"
    );
    assert!(
        matches!(summary.files[1].result, Err(FetchError::BadName(_))),
        "{summary:?}"
    );
    match &summary.files[2].result {
        Err(error @ FetchError::Local { .. }) => {
            assert!(
                error.to_string().contains("refusing to write through"),
                "{error}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        running.stats.snapshot().manifests,
        0,
        "refused before asking the server"
    );
    assert_eq!(
        files_under(parent.path()),
        Vec::<String>::new(),
        "nothing written at all"
    );
    assert!(files_under(elsewhere.path()).is_empty());
}

async fn a_corrupted_chunk_is_caught_and_never_written_under_the_final_name(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    write_files(
        share.path(),
        &[("big.bin", &pattern(8 * CHUNK as usize, 1))],
    );
    let liar = Arc::new(Liar {
        corrupt: Some((2, AtomicU32::new(u32::MAX))),
        ..Liar::new(share.path())
    });
    let addr = serve_wrapped(transport, Arc::clone(&liar)).await;
    let out = tempfile::tempdir().expect("out dir");
    let summary = get(
        Tokio,
        transport,
        addr,
        &names(&["big.bin"]),
        out.path(),
        get_config(),
        Recorder::new(),
    )
    .await
    .expect("connect");

    match &summary.files[0].result {
        Err(FetchError::Corrupt { chunk: 2, attempts }) => assert_eq!(*attempts, MAX_BAD_CHUNK),
        other => panic!("expected the corrupt chunk to be caught, got {other:?}"),
    }
    assert!(
        !out.path().join("big.bin").exists(),
        "a corrupt file under the final name"
    );
    assert_eq!(liar.lies.load(Ordering::Relaxed), u64::from(MAX_BAD_CHUNK));
    // What the partial file holds of chunk 2 is not the lie: it was never written.
    let partial = std::fs::read(out.path().join(".big.bin.part")).expect("the partial file");
    let chunk = &partial[2 * CHUNK as usize..3 * CHUNK as usize];
    assert!(
        chunk.iter().all(|b| *b == 0),
        "the corrupt chunk was written"
    );
}

async fn a_chunk_corrupted_once_is_fetched_again_and_the_file_verifies(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    let data = pattern(4 * CHUNK as usize, 1);
    write_files(share.path(), &[("a.bin", &data)]);
    let liar = Arc::new(Liar {
        corrupt: Some((1, AtomicU32::new(1))),
        ..Liar::new(share.path())
    });
    let addr = serve_wrapped(transport, Arc::clone(&liar)).await;
    let out = tempfile::tempdir().expect("out dir");
    let recorder = Recorder::new();
    let summary = get(
        Tokio,
        transport,
        addr,
        &names(&["a.bin"]),
        out.path(),
        get_config(),
        recorder.clone(),
    )
    .await
    .expect("connect");

    assert_verified(&summary);
    assert!(std::fs::read(out.path().join("a.bin")).expect("read") == data);
    assert_eq!(liar.lies.load(Ordering::Relaxed), 1);
    assert_eq!(
        recorder.notes("a.bin"),
        ["chunk 1 failed SHA-256 verification; fetching it again"]
    );
}

/// Starts downloading `big.bin` from a server that stops answering after
/// `allow` chunks, waits for those, then kills the download as a crash
/// would (the task is aborted). Returns the partial file's path.
async fn interrupt(transport: Transport, share: &Path, out: &Path, allow: u64) {
    let gate = Gate {
        inner: Share::new(share, &common::share_config()).expect("share"),
        allow: AtomicU64::new(allow),
    };
    let addr = serve_wrapped(transport, Arc::new(gate)).await;
    let recorder = Recorder::new();
    let (progress, out) = (recorder.clone(), out.to_owned());
    let download: JoinHandle<_> = tokio::spawn(async move {
        get(
            Tokio,
            transport,
            addr,
            &names(&["big.bin"]),
            &out,
            get_config(),
            progress,
        )
        .await
    });
    recorder.wait_for_chunks(allow).await;
    download.abort();
    assert!(download.await.expect_err("aborted").is_cancelled());
}

async fn an_interrupted_download_resumes_fetching_only_missing_or_bad_chunks(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    let data = pattern(32 * CHUNK as usize, 7);
    write_files(share.path(), &[("big.bin", &data)]);
    let out = tempfile::tempdir().expect("out dir");
    interrupt(transport, share.path(), out.path(), 12).await;
    assert!(!out.path().join("big.bin").exists());
    // Spoil one of the chunks on disk: it must be fetched again.
    let part = out.path().join(".big.bin.part");
    let mut partial = std::fs::read(&part).expect("the partial file");
    let chunks: Vec<usize> = (0..32)
        .filter(|i| {
            partial[i * CHUNK as usize..(i + 1) * CHUNK as usize]
                == data[i * CHUNK as usize..(i + 1) * CHUNK as usize]
        })
        .collect();
    assert_eq!(
        chunks.len(),
        12,
        "the twelve chunks that arrived are on disk"
    );
    partial[chunks[0] * CHUNK as usize + 5] ^= 0xff;
    std::fs::write(&part, &partial).expect("spoil a chunk");

    let running = serve(transport, share.path()).await;
    let recorder = Recorder::new();
    let summary = get(
        Tokio,
        transport,
        running.addr,
        &names(&["big.bin"]),
        out.path(),
        get_config(),
        recorder.clone(),
    )
    .await
    .expect("connect");

    assert_verified(&summary);
    let fetched = summary.files[0].result.as_ref().expect("verified");
    assert_eq!((fetched.chunks_reused, fetched.chunks_fetched), (11, 21));
    assert_eq!(
        running.stats.snapshot().chunks,
        21,
        "only the missing and bad chunks crossed"
    );
    assert_eq!(
        recorder.notes("big.bin"),
        ["resuming: 11 of 32 chunks already on disk verified"]
    );
    assert!(std::fs::read(out.path().join("big.bin")).expect("read") == data);
    assert_eq!(files_under(out.path()), ["big.bin"]);
}

async fn a_partial_download_of_a_file_that_changed_starts_over_and_says_so(transport: Transport) {
    let share = tempfile::tempdir().expect("share dir");
    write_files(
        share.path(),
        &[("big.bin", &pattern(16 * CHUNK as usize, 1))],
    );
    let out = tempfile::tempdir().expect("out dir");
    interrupt(transport, share.path(), out.path(), 6).await;
    let changed = pattern(16 * CHUNK as usize, 2);
    write_files(share.path(), &[("big.bin", &changed)]);

    let running = serve(transport, share.path()).await;
    let recorder = Recorder::new();
    let summary = get(
        Tokio,
        transport,
        running.addr,
        &names(&["big.bin"]),
        out.path(),
        get_config(),
        recorder.clone(),
    )
    .await
    .expect("connect");

    assert_verified(&summary);
    let fetched = summary.files[0].result.as_ref().expect("verified");
    assert_eq!((fetched.chunks_reused, fetched.chunks_fetched), (0, 16));
    let notes = recorder.notes("big.bin");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("changed on the server since the partial download (was version"),
        "{notes:?}"
    );
    assert!(std::fs::read(out.path().join("big.bin")).expect("read") == changed);
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("create a symlink");
}
