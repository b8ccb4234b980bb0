//! The `chat` binary as a user runs it: help on every command, clear
//! refusals of wrong command lines, a fast failure with a hint when no
//! server listens, and a short session against a real server process.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// A finished run: exit code, stdout, stderr.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `chat` with `args`, feeding it `stdin`, and kills it if it is
/// still running after a minute (the test then fails on the exit code).
fn chat(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(CHAT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the chat binary runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let code = wait(&mut child, Duration::from_secs(60));
    Run {
        code,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// The child's exit code; `None` when it had to be killed after `limit`.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait for chat") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A loopback port nothing listens on (bound and released again).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn every_command_has_help() {
    for (args, expected) in [
        (vec!["--help"], "Usage: chat <COMMAND>"),
        (vec!["server", "--help"], "Usage: chat server [OPTIONS]"),
        (
            vec!["client", "--help"],
            "Usage: chat client [OPTIONS] --nick <NAME>",
        ),
        (vec!["bots", "--help"], "Usage: chat bots [OPTIONS]"),
    ] {
        let run = chat(&args, "");
        assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
        assert!(run.stdout.contains(expected), "{args:?}: {}", run.stdout);
        assert!(
            run.stdout.contains("--transport") || args.len() == 1,
            "{}",
            run.stdout
        );
    }
    let client = chat(&["client", "--help"], "").stdout;
    for flag in [
        "--server <ADDR>",
        "--nick <NAME>",
        "--room <ROOM>",
        "/join ROOM",
    ] {
        assert!(client.contains(flag), "{flag} in {client}");
    }
    let bots = chat(&["bots", "--help"], "").stdout;
    for flag in ["--server <ADDR>", "--count <N>", "--seconds <S>"] {
        assert!(bots.contains(flag), "{flag} in {bots}");
    }
}

#[test]
fn a_wrong_flag_or_transport_is_refused_with_the_reason() {
    let run = chat(&["server", "--bogus"], "");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("unexpected argument '--bogus'"),
        "{}",
        run.stderr
    );
    let run = chat(&["client", "--nick", "ada", "--transport", "quic"], "");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("invalid value 'quic' for '--transport <tcp|udp>': unknown transport `quic`: expected `tcp` or `udp`"),
        "{}",
        run.stderr
    );
    let run = chat(&["client"], "");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("--nick <NAME>"), "{}", run.stderr);
    let run = chat(&["bots", "--seconds", "soon"], "");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("`soon` is not a number of seconds"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_client_with_no_server_fails_at_once_with_the_hint() {
    for transport in ["tcp", "udp"] {
        let server = format!("127.0.0.1:{}", free_port());
        let run = chat(
            &[
                "client",
                "--server",
                &server,
                "--nick",
                "ada",
                "--transport",
                transport,
            ],
            "",
        );
        assert_eq!(run.code, Some(1), "{transport}: {run:?}");
        assert!(
            run.stderr.contains(&format!(
                "(is a protowright server listening on {server} over"
            )),
            "{transport}: {}",
            run.stderr
        );
    }
}

/// A `chat server` process on a free port; killed when dropped.
struct ServerProcess {
    child: Child,
    addr: String,
}

impl ServerProcess {
    fn start(transport: &str) -> Self {
        let mut child = Command::new(CHAT)
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--transport",
                transport,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server runs");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the server says where it listens");
        let addr = first
            .strip_prefix("chat server listening on ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        Self { child, addr }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn against_a_server_process_a_client_chats_bots_report_and_a_bad_nick_exits_3() {
    for transport in ["tcp", "udp"] {
        let server = ServerProcess::start(transport);
        let at = ["--server", server.addr.as_str(), "--transport", transport];
        let run = chat(
            &[&["client", "--nick", "ada"][..], &at].concat(),
            "hello there\n/list\n/frobnicate\n",
        );
        assert_eq!(run.code, Some(0), "{run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(
            lines,
            [
                format!(
                    "* connected to {} over {transport} as ada; /help lists the commands",
                    server.addr
                )
                .as_str(),
                "* you are in #lobby, alone",
                "[#lobby] ada: hello there",
                "* #lobby: ada",
                "* bye",
            ],
            "{transport}"
        );
        assert_eq!(
            run.stderr,
            "! unknown command /frobnicate; /help lists them\n"
        );

        let run = chat(&[&["client", "--nick", "not ok"][..], &at].concat(), "");
        assert_eq!(run.code, Some(3), "{run:?}");
        assert!(
            run.stderr
                .contains("INVALID_ARGUMENT: the nickname `not ok` contains ' '"),
            "{}",
            run.stderr
        );

        let run = chat(
            &[&["bots", "--count", "4", "--seconds", "1"][..], &at].concat(),
            "",
        );
        assert_eq!(run.code, Some(0), "{run:?}");
        let summary: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(summary.len(), 1, "one summary line: {}", run.stdout);
        assert!(
            summary[0].starts_with(&format!(
                "4 bots in 1 rooms over {transport} for 1.0s: sent "
            )),
            "{}",
            summary[0]
        );
        assert!(summary[0].ends_with("errors 0"), "{}", summary[0]);
    }
}
