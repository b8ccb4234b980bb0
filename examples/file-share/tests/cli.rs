//! The command line, through the built binary: help on every command,
//! wrong flags refused, an unreachable server reported at once, and exit
//! codes that say whether every file verified.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{files_under, pattern, write_files};

const BIN: &str = env!("CARGO_BIN_EXE_file-share");

/// Runs the binary with `args`, killing it after 60 s.
fn run(args: &[&str]) -> Output {
    run_within(args, Duration::from_secs(60))
}

/// Runs the binary with `args`, failing the test after `limit`.
fn run_within(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start file-share");
    wait(child, limit)
}

fn wait(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("poll the child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("file-share did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server process, killed when dropped.
struct Serving {
    child: Child,
    addr: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `file-share serve` on a free loopback port; returns once it
/// says where it listens.
fn serve(dir: &Path, transport: &str) -> Serving {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--transport",
            transport,
            "--dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, first) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = lines.send(line);
    });
    let line = first
        .recv_timeout(Duration::from_secs(30))
        .expect("the server says where it listens");
    // "sharing DIR on tcp 127.0.0.1:PORT (256 KiB chunks); Ctrl-C to stop"
    let addr = line
        .split_whitespace()
        .find(|word| word.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Serving { child, addr }
}

#[test]
fn every_command_has_help() {
    for (args, expected) in [
        (&["--help"][..], &["serve", "list", "get"][..]),
        (
            &["serve", "--help"],
            &[
                "--dir <DIR>",
                "--listen <ADDR>",
                "--transport",
                "--chunk-size",
            ],
        ),
        (&["list", "--help"], &["--server <ADDR>", "--transport"]),
        (
            &["get", "--help"],
            &[
                "--server <ADDR>",
                "--out <DIR>",
                "<NAME>...",
                "--transport",
                "--retry-for",
            ],
        ),
        (&["help", "get"], &["--retry-for"]),
    ] {
        let output = run(args);
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        for flag in expected {
            assert!(
                stdout.contains(flag),
                "{args:?} does not mention {flag}:\n{stdout}"
            );
        }
    }
}

#[test]
fn wrong_flags_and_values_are_refused_with_exit_code_2() {
    for (args, complaint) in [
        (
            &["get", "--out", "x", "a", "--bogus"][..],
            "unexpected argument '--bogus'",
        ),
        (
            &["get", "--out", "x"],
            "the following required arguments were not provided",
        ),
        (&["get", "a"], "--out <DIR>"),
        (
            &["get", "--out", "x", "a", "--transport", "quic"],
            "invalid value 'quic'",
        ),
        (
            &["get", "--out", "x", "a", "--retry-for", "soon"],
            "is not a duration",
        ),
        (&["serve"], "--dir <DIR>"),
        (&["list", "--server", "nowhere"], "invalid value 'nowhere'"),
        (&["fetch"], "unrecognized subcommand 'fetch'"),
    ] {
        let output = run(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(complaint),
            "{args:?}: expected {complaint:?} in:\n{stderr}"
        );
    }
}

#[test]
fn get_from_a_port_nothing_listens_on_fails_at_once_with_a_hint() {
    let out = tempfile::tempdir().expect("out dir");
    // Ports that were free a moment ago: nothing listens on them.
    let tcp_port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let udp_port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    for (transport, port) in [("tcp", tcp_port), ("udp", udp_port)] {
        let server = format!("127.0.0.1:{port}");
        let output = run_within(
            &[
                "get",
                "--server",
                &server,
                "--transport",
                transport,
                "--out",
                &out.path().display().to_string(),
                "a.txt",
            ],
            // Refused at once, well inside the 5 s connect timeout.
            Duration::from_secs(4),
        );
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{transport}: {stderr}");
        assert!(
            stderr.contains(&format!("could not connect to {server}")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "is a protowright server listening on {server} over"
            )),
            "{stderr}"
        );
    }
    assert!(files_under(out.path()).is_empty());
}

#[test]
fn serve_list_and_get_end_to_end_with_exit_code_0_only_when_every_file_verified() {
    let share = tempfile::tempdir().expect("share dir");
    let big = pattern(700_000, 1);
    write_files(
        share.path(),
        &[("big.bin", &big), ("docs/small.txt", b"small\n")],
    );
    for transport in ["tcp", "udp"] {
        let server = serve(share.path(), transport);
        let listed = run(&["list", "--server", &server.addr, "--transport", transport]);
        let listing = text(&listed.stdout);
        assert!(listed.status.success(), "{}", text(&listed.stderr));
        assert!(
            listing.contains("big.bin") && listing.contains("docs/small.txt"),
            "{listing}"
        );
        assert!(
            listing.contains(&file_share::digest::hex(&file_share::digest::sha256(&big))),
            "{listing}"
        );
        assert!(listing.contains("700000"), "{listing}");

        let out = tempfile::tempdir().expect("out dir");
        let out_dir = out.path().display().to_string();
        let got = run(&[
            "get",
            "--server",
            &server.addr,
            "--transport",
            transport,
            "--out",
            &out_dir,
            "big.bin",
            "docs/small.txt",
        ]);
        let stdout = text(&got.stdout);
        assert_eq!(got.status.code(), Some(0), "{stdout}{}", text(&got.stderr));
        assert!(stdout.contains("2 of 2 files verified"), "{stdout}");
        assert!(std::fs::read(out.path().join("big.bin")).expect("read") == big);

        let partly = run(&[
            "get",
            "--server",
            &server.addr,
            "--transport",
            transport,
            "--out",
            &out_dir,
            "docs/small.txt",
            "missing.txt",
        ]);
        let stdout = text(&partly.stdout);
        assert_eq!(partly.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains(
                "FAILED    missing.txt: NOT_FOUND: no file named `missing.txt` is shared here"
            ),
            "{stdout}"
        );
        assert!(stdout.contains("1 of 2 files verified"), "{stdout}");
    }
}
