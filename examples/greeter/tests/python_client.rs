//! A client in another language, using only its stock protobuf library,
//! talks to a protowright TCP server: Python with PyPI's `protobuf`.
//!
//! The test installs `protobuf` into a virtual environment under the cargo
//! target directory (once; later runs reuse it). Set
//! `PROTOWRIGHT_SKIP_PYTHON=1` to skip it on a machine without Python or
//! without access to PyPI.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use greeter::Host;
use greeter::pb::GreeterServer;
use protowright::net::Tokio;
use protowright::{Server, ServerConfig, Transport};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_with_stock_protobuf_calls_and_messages_the_server() {
    if std::env::var_os("PROTOWRIGHT_SKIP_PYTHON").is_some() {
        eprintln!("skipped: PROTOWRIGHT_SKIP_PYTHON is set");
        return;
    }
    let python = tokio::task::spawn_blocking(python_with_protobuf)
        .await
        .expect("venv set-up");
    let server = Server::bind(
        Tokio,
        Transport::Tcp,
        (Ipv4Addr::LOCALHOST, 0).into(),
        ServerConfig::default(),
    )
    .await
    .expect("bind");
    let port = server.local_addr().port();
    let handle = server.handle();
    tokio::spawn(server.serve(GreeterServer::new(Host::default())));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/greeter_client.py");
    let descriptors = concat!(env!("OUT_DIR"), "/greeter.descriptors.bin");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .arg(descriptors)
        .output()
        .await
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
            "say_hello: Hello, Python!",
            "say_hello empty: 3 a name is required to say hello",
            "unknown method: 12",
            "one-way visit counted: True",
            "ping: pong",
        ]
    );
    handle.shutdown().await;
}
