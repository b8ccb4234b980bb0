//! Reliable UDP under drawn fault schedules: every delivery keeps its
//! guarantee, every call ends correctly, everything pending arrives after
//! the heal. `PROTOWRIGHT_SEED=<seed>` replays one case;
//! `PROTOWRIGHT_CASES=<n>` runs more.

use protowright::Transport;
use protowright_sim::{Cases, Schedule};
use sim_tests::traffic;

#[test]
fn every_guarantee_holds_under_drawn_fault_schedules() {
    let cases = Cases::new(Schedule::strategy(traffic::space(Transport::Udp)), 12);
    let summary = cases.run(|case| traffic::run(case, Transport::Udp));
    summary.require(&[
        "fault.dropped",
        "fault.duplicated",
        "fault.corrupted",
        "udp.retransmitted",
        "udp.duplicates_dropped",
        "udp.reorders_buffered",
    ]);
}

mod by_hand {
    //! One schedule per kind of fault, each with proof that it fired and
    //! that the transport's recovery did.

    use std::time::Duration;

    use protowright::Transport;
    use protowright_sim::fault::{Bandwidth, Burst};
    use protowright_sim::{Case, Event, Faults, Report, Schedule};
    use sim_tests::traffic;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// The standard scenario under `faults` for the window, then healed.
    fn under(faults: Faults) -> Report {
        run(Schedule::none()
            .with_faults(faults)
            .heal_at(traffic::WINDOW))
    }

    fn run(schedule: Schedule) -> Report {
        traffic::run(Case { seed: 11, schedule }, Transport::Udp)
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    #[test]
    fn thirty_percent_independent_loss() {
        let report = under(Faults::loss(0.3));
        assert!(report.faults.lost > 100, "{:?}", report.faults);
        assert!(report.counter("udp.retransmitted") > 0);
    }

    #[test]
    fn bursty_loss_of_thirty_percent_in_the_long_run() {
        let burst = Burst {
            enter: 0.05,
            leave: 0.1,
            loss: 0.9,
        };
        let report = under(Faults {
            burst: Some(burst),
            ..Faults::none()
        });
        // Bursts average ten datagrams and a run sees under a thousand, so
        // the share lost swings widely from run to run; that the long-run
        // share is the configured one is the fault model's own test.
        assert!(report.faults.burst_lost > 50, "{:?}", report.faults);
        assert!(report.counter("udp.retransmitted") > 0);
    }

    #[test]
    fn duplication() {
        let report = under(Faults {
            duplicate: 0.2,
            ..Faults::none()
        });
        assert!(report.faults.duplicated > 50, "{:?}", report.faults);
        assert!(report.counter("udp.duplicates_dropped") > 0);
    }

    #[test]
    fn jitter_delays_datagrams_and_every_guarantee_holds() {
        let report = under(Faults {
            jitter: Duration::from_millis(40),
            ..Faults::none()
        });
        assert!(report.faults.delayed > 100, "{:?}", report.faults);
        // That the receiver holds an overtaking ordered message until its
        // turn is asserted over the drawn suite's coverage
        // (`udp.reorders_buffered`): here the calls space each stream's
        // messages wider than the jitter.
    }

    #[test]
    fn corruption_and_truncation() {
        let report = under(Faults {
            corrupt: 0.05,
            truncate: 0.05,
            ..Faults::none()
        });
        assert!(report.faults.corrupted > 10 && report.faults.truncated > 10);
        assert!(report.counter("udp.retransmitted") > 0);
    }

    #[test]
    fn a_path_mtu_below_the_configured_datagram_size() {
        let report = under(Faults {
            max_datagram: Some(1300),
            ..Faults::none()
        });
        assert!(
            report.faults.too_large > 0,
            "probes above 1300 B were dropped"
        );
    }

    #[test]
    fn a_bandwidth_cap_with_a_shallow_queue() {
        let report = under(Faults {
            bandwidth: Some(Bandwidth {
                bytes_per_second: 20_000,
                queue_bytes: 6_000,
            }),
            ..Faults::none()
        });
        assert!(
            report.faults.delayed > 50 && report.faults.queue_dropped > 0,
            "{:?}",
            report.faults
        );
    }

    #[test]
    fn a_partition_shorter_than_the_idle_timeout_is_recovered_on_the_same_connection() {
        let report = run(Schedule::none()
            .at(secs(1.0), Event::partition("client", "server"))
            .at(secs(2.0), Event::repair("client", "server"))
            .heal_at(secs(2.0)));
        assert!(
            report.counter("udp.retransmitted") > 0,
            "what was cut off was resent"
        );
        assert_eq!(report.counter("client.reconnects"), 0);
    }

    #[test]
    fn a_partition_longer_than_the_idle_timeout_is_recovered_by_reconnecting() {
        let report = run(Schedule::none()
            .at(secs(1.0), Event::partition("client", "server"))
            .at(secs(3.5), Event::repair("client", "server"))
            .heal_at(secs(3.5)));
        assert!(report.counter("client.reconnects") >= 1);
    }

    #[test]
    fn a_crash_and_restart_of_the_server() {
        let report = run(Schedule::none()
            .at(secs(1.0), Event::crash("server"))
            .at(secs(2.0), Event::restart("server"))
            .heal_at(secs(2.0)));
        assert!(report.counter("client.reconnects") >= 1);
    }

    #[test]
    fn a_crash_and_restart_of_the_client() {
        let report = run(Schedule::none()
            .at(secs(1.0), Event::crash("client"))
            .at(secs(2.0), Event::restart("client"))
            .heal_at(secs(2.0)));
        let flows = report
            .history
            .iter()
            .filter(|e| {
                matches!(
                    e.what,
                    protowright_sim::history::Observation::FlowStarted { .. }
                )
            })
            .count();
        assert!(flows >= 2, "the restarted client opened a new connection");
    }
}

mod handshake {
    //! The first connect through steady loss: a lost handshake packet is
    //! resent by the transport's own timers, so a client connects on its
    //! first try (`Client::connect` fails fast otherwise).

    use std::time::Duration;

    use protowright::{Client, Transport};
    use protowright_sim::{Faults, Schedule, Sim, defaults};
    use protowright_testing::Probe;
    use protowright_testing::pb::{Payload, Probe as _, ProbeClient, ProbeServer};

    /// How long a first connect may take through 10% loss: the handshake's
    /// round trip and a resend or two at the probe timeout, not a hello
    /// backoff of seconds.
    const PROMPT: Duration = Duration::from_millis(900);

    #[test]
    fn every_client_connects_promptly_through_ten_percent_loss() {
        let mut slowest = Duration::ZERO;
        for seed in 1..=40 {
            let schedule = Schedule::none()
                .with_faults(Faults::loss(0.1))
                .heal_at(Duration::from_secs(10));
            Sim::new(seed)
                .schedule(schedule)
                .host("server", |ctx| async move {
                    let server = ctx.server(Transport::Udp, 9000).await?;
                    server.serve(ProbeServer::new(Probe::default())).await;
                    Ok(())
                })
                .client("client", |ctx| async move {
                    let server = ctx.addr("server", 9000);
                    let started = ctx.now();
                    let client =
                        Client::connect(ctx.net(), Transport::Udp, server, defaults::client())
                            .await?;
                    ctx.history()
                        .count("connect_micros", (ctx.now() - started).as_micros() as u64);
                    ProbeClient::new(client.clone())
                        .echo(Payload::default())
                        .await?;
                    client.close();
                    client.closed().await;
                    Ok(())
                })
                .run()
                .map(|report| {
                    let took = Duration::from_micros(report.counter("connect_micros"));
                    slowest = slowest.max(took);
                    assert!(
                        took < PROMPT,
                        "seed {seed}: the first connect took {took:?}"
                    );
                })
                .unwrap_or_else(|failure| panic!("{failure}"));
        }
        eprintln!("the slowest first connect took {slowest:?}");
    }
}
