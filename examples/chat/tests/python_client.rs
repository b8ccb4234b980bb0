//! A client in another language, using only its stock protobuf library,
//! chats with a Rust client through a protowright TCP server: Python with
//! PyPI's `protobuf`, calling `Join`/`Say`/`Leave` with REQUEST envelopes
//! and receiving the server's pushes as MESSAGE envelopes.
//!
//! The test installs `protobuf` into a virtual environment under the cargo
//! target directory (once; later runs reuse it). Set
//! `PROTOWRIGHT_SKIP_PYTHON=1` to skip it on a machine without Python or
//! without access to PyPI.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chat::{ClientOptions, Limits, Session, Update, pb};
use protowright::net::Tokio;
use protowright::{ServerConfig, Transport};

const PROTOBUF: &str = "protobuf==6.33.6";

/// A virtual environment with `protobuf` installed; its python.
fn python_with_protobuf() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-protobuf-venv");
    let python = venv.join("bin/python");
    let marker = venv.join(format!("installed-{PROTOBUF}"));
    if marker.exists() {
        return python;
    }
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "create a Python virtual environment",
    );
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PROTOBUF,
        ]),
        "install protobuf from PyPI",
    );
    std::fs::write(&marker, b"").expect("mark the environment ready");
    python
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| {
        panic!("could not {what}: {e} (set PROTOWRIGHT_SKIP_PYTHON=1 to skip)")
    });
    assert!(
        output.status.success(),
        "could not {what} (set PROTOWRIGHT_SKIP_PYTHON=1 to skip):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The next update, within a bound.
async fn next(updates: &mut chat::Updates) -> Update {
    tokio::time::timeout(Duration::from_secs(20), updates.next())
        .await
        .expect("an update in time")
        .expect("the session is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_with_stock_protobuf_chats_with_a_rust_client() {
    if std::env::var_os("PROTOWRIGHT_SKIP_PYTHON").is_some() {
        eprintln!("skipped: PROTOWRIGHT_SKIP_PYTHON is set");
        return;
    }
    let python = tokio::task::spawn_blocking(python_with_protobuf)
        .await
        .expect("venv set-up");
    let addr = (Ipv4Addr::LOCALHOST, 0).into();
    let server = chat::serve(
        Tokio,
        Transport::Tcp,
        addr,
        ServerConfig::default(),
        Limits::default(),
    )
    .await
    .expect("the server starts");
    let (ada, mut ada_sees, _) = Session::connect(
        Tokio,
        Transport::Tcp,
        server.addr(),
        "ada",
        "lobby",
        ClientOptions::default(),
    )
    .await
    .expect("ada joins");
    ada.say("hello before python").await.unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/chat_client.py");
    let descriptors = concat!(env!("OUT_DIR"), "/chat.descriptors.bin");
    let port = server.addr().port().to_string();
    let python_runs = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(port)
            .arg(descriptors)
            .output()
    });

    // What Ada sees of the Python user, and her answer, while it runs.
    let ada_side = tokio::spawn(async move {
        let joined = pb::Joined {
            room: "lobby".into(),
            nick: "py".into(),
        };
        assert_eq!(next(&mut ada_sees).await, Update::Joined(joined));
        let Update::Said(said) = next(&mut ada_sees).await else {
            panic!("expected the Python user's line");
        };
        let line = (said.nick.as_str(), said.text.as_str(), said.seq);
        assert_eq!(line, ("py", "hello from python", 2));
        ada.say("hello python").await.unwrap();
        let left = pb::Left {
            room: "lobby".into(),
            nick: "py".into(),
            reason: "left".into(),
        };
        assert_eq!(next(&mut ada_sees).await, Update::Left(left));
        ada
    });

    let output = python_runs
        .await
        .expect("the Python client's thread")
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "join as ada: 6 the nickname `ada` is taken; pick another",
            "unknown method: 12",
            "joined lobby with ada, py",
            "history: ada: hello before python",
            "said line 2",
            "ada said: hello python (line 3)",
            "ping: pong",
            "left lobby",
        ]
    );
    let ada = ada_side
        .await
        .expect("Ada saw the Python user come, talk and leave");
    ada.quit().await;
    server.shutdown().await;
}
