//! A multi-megabyte transfer over reliable UDP arrives byte-identical
//! through 10% loss and a partition in the middle of it.

use std::time::Duration;

use protowright_sim::{Event, Faults, Schedule};
use sim_tests::bulk;

const LEN: usize = 4 << 20;

#[test]
fn four_mebibytes_arrive_byte_identical_through_loss_and_a_partition() {
    let schedule = Schedule::none()
        .with_faults(Faults::loss(0.1))
        .at(
            Duration::from_millis(300),
            Event::partition("client", "server"),
        )
        .at(
            Duration::from_millis(1300),
            Event::repair("client", "server"),
        )
        .heal_at(Duration::from_secs(3));
    let (outcome, received) = bulk::run(5, schedule, LEN);
    let report = outcome.unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(received.len(), LEN);
    assert!(received == bulk::pattern(LEN), "byte-identical");
    assert!(report.faults.lost > 0, "{:?}", report.faults);
    assert!(report.counter("udp.retransmitted") > 0);
}
