//! The built `game` binary: help on every command, wrong flags refused,
//! an unreachable server reported with the hint, and a real server and
//! bots on loopback printing what the README says.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn game(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_game"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_is_there_for_every_command_and_says_reliable_udp() {
    let top = game(&["--help"]);
    assert!(top.status.success());
    let top = text(&top.stdout);
    assert!(top.contains("reliable UDP only"), "{top}");
    assert!(top.contains("server") && top.contains("bots"), "{top}");
    let server = text(&game(&["server", "--help"]).stdout);
    for flag in [
        "--listen <ADDR>",
        "--tick-hz <HZ>",
        "[default: 30]",
        "127.0.0.1:7300",
    ] {
        assert!(server.contains(flag), "server help lacks {flag}: {server}");
    }
    let bots = text(&game(&["bots", "--help"]).stdout);
    for flag in ["--server <ADDR>", "--count <N>", "--seconds <S>"] {
        assert!(bots.contains(flag), "bots help lacks {flag}: {bots}");
    }
}

#[test]
fn a_wrong_flag_or_value_is_refused_with_exit_code_2() {
    let wrong = game(&["server", "--tick-rate", "30"]);
    assert_eq!(wrong.status.code(), Some(2));
    let stderr = text(&wrong.stderr);
    assert!(
        stderr.contains("unexpected argument '--tick-rate'"),
        "{stderr}"
    );
    let not_a_number = game(&["bots", "--count", "many"]);
    assert_eq!(not_a_number.status.code(), Some(2));
    assert!(text(&not_a_number.stderr).contains("invalid value 'many'"));
    let no_command = game(&[]);
    assert_eq!(no_command.status.code(), Some(2));
}

#[test]
fn bad_settings_are_refused_with_exit_code_1_and_the_reason() {
    let zero = game(&["bots", "--seconds", "0"]);
    assert_eq!(zero.status.code(), Some(1));
    assert!(text(&zero.stderr).contains("--seconds must be a positive number"));
    let too_fast = game(&["server", "--listen", "127.0.0.1:0", "--tick-hz", "1000"]);
    assert_eq!(too_fast.status.code(), Some(1));
    assert!(text(&too_fast.stderr).contains("the tick rate must be 1 to 240"));
}

#[test]
fn bots_against_a_port_nothing_listens_on_fail_fast_with_the_hint() {
    // Bind a UDP port, then free it: nothing listens there now.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = game(&["bots", "--server", &addr, "--count", "1", "--seconds", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("no game server answered at {addr}"))
            && stderr.contains(&format!("start one with `game server --listen {addr}`")),
        "{stderr}"
    );
}

/// A server process, stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_server_and_bots_on_loopback_print_what_the_readme_shows() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_game"))
        .args(["server", "--listen", "127.0.0.1:0", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("its output");
    let server = Running(child);
    // Its lines, read on a thread so that every wait below is bounded.
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the server printed a line in time")
    };
    let first = next_line();
    assert!(
        first.ends_with("over reliable UDP: 30 ticks/s, up to 16 players (Ctrl-C stops)"),
        "{first}"
    );
    let addr = first
        .strip_prefix("game server listening on ")
        .and_then(|rest| rest.split(' ').next())
        .expect("the address")
        .to_owned();
    let out = game(&["bots", "--server", &addr, "--count", "2", "--seconds", "1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("2 bots, 1.0 s: rtt "), "{stdout}");
    assert!(
        stdout.contains("(0 lost, 0 repeated, 0 stale snapshots)"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
    let joined: Vec<String> = (0..4).map(|_| next_line()).collect();
    assert!(
        joined[0].ends_with("player 1 (bot-1) joined")
            && joined[1].ends_with("player 2 (bot-2) joined"),
        "{joined:?}"
    );
    assert!(
        joined[2..].iter().all(|l| l.ends_with("left the game")),
        "{joined:?}"
    );
    drop(server);
}
