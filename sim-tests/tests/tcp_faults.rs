//! The TCP transport under drawn schedules of partitions, holds, and
//! crashes and restarts of either side (simulated TCP never retransmits,
//! so its streams are faulted that way, never with datagram loss): RPC and
//! protocol messages keep their guarantees, and the client reconnects.

use protowright::Transport;
use protowright_sim::{Cases, Schedule};
use sim_tests::traffic;

#[test]
fn every_guarantee_holds_under_drawn_fault_schedules() {
    let cases = Cases::new(Schedule::strategy(traffic::space(Transport::Tcp)), 12);
    let summary = cases.run(|case| traffic::run(case, Transport::Tcp));
    // TCP meets no datagram faults: the schedule's own counters prove the
    // partitions and crashes struck.
    summary.require(&["client.reconnects", "fault.partitions", "fault.crashes"]);
}

mod by_hand {
    //! Hand-written schedules, each with a claim about what the client sees.

    use std::time::Duration;

    use protowright::Transport;
    use protowright::rpc::Code;
    use protowright_sim::{Case, Event, Report, Schedule};
    use sim_tests::traffic::{self, calls_between};

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn run(schedule: Schedule) -> Report {
        let case = Case { seed: 7, schedule };
        traffic::run(case, Transport::Tcp).unwrap_or_else(|failure| panic!("{failure}"))
    }

    fn typed(outcomes: &[Result<(), Code>]) -> bool {
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(()) | Err(Code::Unavailable | Code::DeadlineExceeded)))
    }

    #[test]
    fn a_partition_fails_calls_with_typed_errors_and_the_client_recovers_after_repair() {
        let report = run(Schedule::none()
            .at(secs(1.0), Event::partition("client", "server"))
            .at(secs(3.0), Event::repair("client", "server"))
            .heal_at(secs(3.0)));
        let during = calls_between(&report, secs(1.2), secs(2.8));
        assert!(
            during.iter().any(|o| o.is_err()),
            "the partition was felt: {during:?}"
        );
        assert!(typed(&during), "{during:?}");
        assert!(
            report.counter("client.reconnects") >= 1,
            "the dead connection was replaced"
        );
    }

    #[test]
    fn a_crashed_and_restarted_server_is_reconnected_to() {
        let report = run(Schedule::none()
            .at(secs(1.0), Event::crash("server"))
            .at(secs(2.0), Event::restart("server"))
            .heal_at(secs(2.0)));
        // While the server is down the client waits for its connection
        // instead of calling; whatever failed, failed typed.
        let around = calls_between(&report, secs(0.6), secs(2.5));
        assert!(typed(&around), "{around:?}");
        assert!(report.counter("client.reconnects") >= 1);
        let after = calls_between(&report, secs(3.0), report.ended);
        assert!(
            !after.is_empty() && after.iter().all(|o| o.is_ok()),
            "{after:?}"
        );
    }

    #[test]
    fn a_short_hold_delays_calls_without_breaking_the_connection() {
        // 300 ms: under the call timeout (500 ms) and the dead-peer bound (1 s).
        let report = run(Schedule::none()
            .at(secs(1.0), Event::hold("client", "server"))
            .at(secs(1.3), Event::release("client", "server"))
            .heal_at(secs(1.3)));
        let all = calls_between(&report, Duration::ZERO, report.ended);
        assert!(all.iter().all(|o| o.is_ok()), "no call failed: {all:?}");
        assert_eq!(
            report.counter("client.reconnects"),
            0,
            "the connection survived"
        );
    }

    #[test]
    fn a_long_hold_is_detected_by_heartbeats_and_healed_by_reconnecting() {
        // 3 s: past the 1 s dead-peer bound.
        let report = run(Schedule::none()
            .at(secs(1.0), Event::hold("client", "server"))
            .at(secs(4.0), Event::release("client", "server"))
            .heal_at(secs(4.0)));
        let held = calls_between(&report, secs(1.0), secs(4.0));
        assert!(
            held.iter().any(|o| o.is_err()),
            "the hold was felt: {held:?}"
        );
        assert!(typed(&held), "{held:?}");
        assert!(
            report.counter("client.reconnects") >= 1,
            "heartbeats declared the held connection dead and it was replaced"
        );
    }
}
