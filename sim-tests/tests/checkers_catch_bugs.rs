//! The checkers are shown to catch real bugs: the standard scenario with a
//! deliberate bug in the code between the transport and the application
//! (a message lost, duplicated or reordered, a call answered with another
//! call's response or left hanging past its deadline). Each must be caught
//! within a stated number of seeds, and shrunk to a short schedule.

use protowright::Transport;
use protowright_sim::{Cases, Cause, Schedule};
use sim_tests::traffic::{self, Mutant};

/// Seeds within which each bug must be caught.
const SEEDS: u64 = 24;

/// The most events a shrunk schedule may keep.
const SHORT: usize = 2;

/// Runs the scenario with `mutant` over `SEEDS` seeds; returns the failure.
fn caught(mutant: Mutant) -> Box<protowright_sim::Failure> {
    let cases = Cases::new(Schedule::strategy(traffic::space(Transport::Udp)), SEEDS);
    let failure = cases
        .try_run(|case| traffic::run_mutant(case, Transport::Udp, mutant))
        .expect_err("the bug is caught within the stated seeds");
    assert!(
        failure.report.schedule.events.len() <= SHORT,
        "shrunk to a short schedule: {}",
        failure.report.schedule
    );
    assert!(failure.replay.is_some(), "says how to replay");
    failure
}

fn violation(failure: &protowright_sim::Failure) -> String {
    match &failure.cause {
        Cause::Violation(violation) => format!("{}: {}", violation.check, violation.what),
        other => panic!("expected a checker's violation, got {other}"),
    }
}

#[test]
fn a_reliable_message_lost_under_loss_is_caught() {
    let failure = caught(Mutant::LoseReliable);
    let what = violation(&failure);
    assert!(what.starts_with("delivery:"), "{what}");
    assert!(
        what.contains("never arrived") || what.contains("was due"),
        "{what}"
    );
    // Nothing but a datagram fault is needed to trigger it.
    assert!(failure.report.schedule.events.is_empty(), "{failure}");
}

#[test]
fn a_duplicate_delivery_is_caught() {
    let failure = caught(Mutant::Duplicate);
    assert!(violation(&failure).contains("arrived twice"), "{failure}");
    assert!(
        failure.report.schedule.is_clean(),
        "no fault needed: {failure}"
    );
}

#[test]
fn a_reordered_ordered_stream_is_caught() {
    let failure = caught(Mutant::Reorder);
    assert!(violation(&failure).contains("was due"), "{failure}");
}

#[test]
fn an_answer_to_another_call_is_caught() {
    let failure = caught(Mutant::WrongResponse);
    assert!(
        violation(&failure).contains("another call's response"),
        "{failure}"
    );
}

#[test]
fn a_call_hanging_past_its_deadline_is_caught() {
    let failure = caught(Mutant::HangPastDeadline);
    assert!(violation(&failure).contains("past its"), "{failure}");
}

#[test]
fn the_real_transport_passes_the_same_seeds() {
    let cases = Cases::new(Schedule::strategy(traffic::space(Transport::Udp)), SEEDS);
    cases.run(|case| traffic::run(case, Transport::Udp));
}
