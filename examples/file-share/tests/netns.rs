//! A download over reliable UDP through real packet loss: the built
//! `file-share` binary runs as server and client in two network namespaces
//! joined by a veth pair (MTU 1500), each dropping 5% of the UDP packets it
//! receives at random (nftables `numgen random`, on input: a drop on output
//! would fail the sender's system call, which real loss never does).
//!
//! First a few MiB arrive byte-identical through the loss; then again while
//! the server process is killed in the middle of the transfer and started
//! anew: the client keeps retrying and resumes.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); skips, saying why,
//! where they are missing. The namespaces are deleted however the test
//! ends, and every process it starts is killed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{pattern, write_files};

const BIN: &str = env!("CARGO_BIN_EXE_file-share");
const PORT: u16 = 7400;

fn run(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Two namespaces joined by a veth pair, deleted when dropped.
struct Net {
    server: String,
    client: String,
    server_ip: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        for name in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

impl Net {
    /// The namespaces, each dropping `percent`% of the UDP it receives.
    fn lossy(percent: u32) -> Result<Self, String> {
        run(&["nft", "--version"])?;
        let id = std::process::id();
        let net = Self {
            server: format!("fs-srv-{id}"),
            client: format!("fs-cli-{id}"),
            server_ip: "10.231.0.1".into(),
        };
        run(&["ip", "netns", "add", &net.server])?;
        // From here on, dropping `net` deletes what was made.
        run(&["ip", "netns", "add", &net.client])?;
        let (a, b) = (format!("fsv{id}a"), format!("fsv{id}b"));
        run(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b])?;
        run(&["ip", "link", "set", &a, "netns", &net.server])?;
        run(&["ip", "link", "set", &b, "netns", &net.client])?;
        for (ns, dev, addr) in [
            (&net.server, &a, "10.231.0.1/24"),
            (&net.client, &b, "10.231.0.2/24"),
        ] {
            let exec = |rest: &[&str]| {
                let mut args = vec!["ip", "netns", "exec", ns.as_str()];
                args.extend_from_slice(rest);
                run(&args)
            };
            exec(&["ip", "link", "set", "lo", "up"])?;
            exec(&["ip", "addr", "add", addr, "dev", dev])?;
            exec(&["ip", "link", "set", dev, "mtu", "1500", "up"])?;
            exec(&["nft", "add", "table", "inet", "fsloss"])?;
            exec(&[
                "nft",
                "add",
                "chain",
                "inet",
                "fsloss",
                "in",
                "{ type filter hook input priority 0; }",
            ])?;
            let rule = format!("meta l4proto udp numgen random mod 100 < {percent} drop");
            let mut args = vec!["nft", "add", "rule", "inet", "fsloss", "in"];
            args.extend(rule.split(' '));
            exec(&args)?;
        }
        Ok(net)
    }

    /// Limits what the client receives to `rate` (nftables policing: the
    /// excess is dropped), so a transfer lasts long enough to interrupt.
    fn limit_client(&self, rate: &str) -> Result<(), String> {
        let rule = format!("meta l4proto udp limit rate over {rate} drop");
        let mut args = vec![
            "ip",
            "netns",
            "exec",
            &self.client,
            "nft",
            "add",
            "rule",
            "inet",
            "fsloss",
            "in",
        ];
        args.extend(rule.split(' '));
        run(&args)
    }

    fn server_addr(&self) -> String {
        format!("{}:{PORT}", self.server_ip)
    }

    /// Starts `file-share serve` in the server namespace; returns once it
    /// listens.
    fn serve(&self, dir: &Path) -> Process {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server,
                BIN,
                "serve",
                "--transport",
                "udp",
                "--listen",
                &self.server_addr(),
                "--dir",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the server starts");
        assert!(first.starts_with("sharing "), "{first}");
        Process { child, lines }
    }

    /// Starts `file-share get` in the client namespace.
    fn get(&self, out: &Path, names: &[&str]) -> Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client,
                BIN,
                "get",
                "--transport",
                "udp",
                "--retry-for",
                "60s",
                "--server",
                &self.server_addr(),
                "--out",
            ])
            .arg(out)
            .args(names)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the client")
    }
}

/// A process killed when dropped, its stdout lines on a channel.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it as Ctrl-C would; returns what it printed on the way out.
    fn interrupt(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().expect("poll").is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            lines.push(line);
        }
        lines
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for `child` at most `limit`, killing it after; its output.
fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the client did not finish within {limit:?}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_download_survives_real_loss_and_a_server_killed_mid_transfer() {
    let net = match Net::lossy(5) {
        Ok(net) => net,
        Err(why) => {
            eprintln!(
                "skipped: no network namespaces with nftables here ({why}); needs root, iproute2 and nftables"
            );
            return;
        }
    };
    let share = tempfile::tempdir().expect("share dir");
    let data = pattern(6 << 20, 9);
    write_files(share.path(), &[("big.bin", &data)]);

    // Through 5% loss each way.
    let server = net.serve(share.path());
    let out = tempfile::tempdir().expect("out dir");
    let started = Instant::now();
    let output = finish(net.get(out.path(), &["big.bin"]), Duration::from_secs(120));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(
        std::fs::read(out.path().join("big.bin")).expect("read") == data,
        "not byte-identical"
    );
    eprintln!("through 5% loss: {:?}", started.elapsed());
    let stats = server.interrupt();
    assert!(
        stats
            .iter()
            .any(|l| l.starts_with("stopped: served 24 chunks")),
        "{stats:?}"
    );

    // Again, slowed to 2 MB/s, with the server killed a second in and
    // started anew two seconds later.
    net.limit_client("2 mbytes/second").expect("rate limit");
    let mut server = net.serve(share.path());
    let out = tempfile::tempdir().expect("out dir");
    let started = Instant::now();
    let client = net.get(out.path(), &["big.bin"]);
    std::thread::sleep(Duration::from_secs(1));
    server.kill();
    std::thread::sleep(Duration::from_secs(2));
    let restarted = net.serve(share.path());
    let output = finish(client, Duration::from_secs(120));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    eprintln!(
        "through 5% loss, 2 MB/s and a restart: {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        std::fs::read(out.path().join("big.bin")).expect("read") == data,
        "not byte-identical"
    );
    assert!(
        stderr.contains("lost the connection to"),
        "the client never lost the server:\n{stderr}"
    );
    assert!(stderr.contains("reconnected to"), "{stderr}");
    // The restarted server served only what the first had not.
    let stats = restarted.interrupt();
    let served: u64 = stats
        .iter()
        .find_map(|l| {
            l.strip_prefix("stopped: served ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no stats in {stats:?}"));
    assert!(
        served > 0 && served < 24,
        "the restarted server served {served} of 24 chunks"
    );
    eprintln!("{stdout}{stderr}");
}
