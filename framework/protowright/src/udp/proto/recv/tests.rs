//! The receiver fed fragments by hand: duplicates of what it delivered are
//! counted and dropped on every lane, a discarded receiver still knows
//! them, and a hostile peer cannot make it hold more than its bound, while
//! it can come close to it.

use super::*;
use crate::udp::proto::budget::MemoryBudget;

const WINDOW: u64 = 16 << 10;
const MAX_MESSAGE: u64 = 4 << 10;
const BUDGET: u64 = 4 << 10;
const MAX_EARLY: usize = 8;
const MAX_LEAD: u64 = 16;

fn receiver() -> Receiver {
    Receiver::new(RecvLimits {
        max_message: MAX_MESSAGE,
        channels: 4,
        window: WINDOW,
        unreliable_budget: BUDGET,
        max_early: MAX_EARLY,
        max_lead: MAX_LEAD,
    })
}

/// Bytes `offset..offset + len` of message `sequence`, `total` long.
fn fragment(
    lane: Lane,
    channel: u32,
    sequence: u64,
    total: u64,
    offset: u64,
    len: u64,
) -> (Fragment<'static>, u64) {
    static DATA: [u8; MAX_MESSAGE as usize] = [7; MAX_MESSAGE as usize];
    let data = &DATA[offset as usize..(offset + len) as usize];
    let fragment = Fragment {
        lane,
        channel,
        sequence,
        total,
        offset,
        data,
    };
    (fragment, total)
}

/// Feeds `fragment` with no window released yet.
fn feed(receiver: &mut Receiver, (fragment, _): (Fragment<'_>, u64)) -> Result<(), Violation> {
    receiver.on_fragment(&fragment, WINDOW)
}

/// Takes every message out, the application's and the session's.
fn drain(receiver: &mut Receiver) -> usize {
    std::iter::from_fn(|| receiver.pop()).count()
        + std::iter::from_fn(|| receiver.pop_session()).count()
}

#[test]
fn resent_fragments_of_delivered_messages_are_counted_and_dropped_on_every_lane() {
    let mut receiver = receiver();
    let mut duplicates = 0;
    for lane in [
        Lane::ReliableOrdered,
        Lane::ReliableUnordered,
        Lane::Session,
    ] {
        // Message 0 whole, message 1 in two fragments; both delivered.
        feed(&mut receiver, fragment(lane, 1, 0, 100, 0, 100)).expect("fits");
        feed(&mut receiver, fragment(lane, 1, 1, 300, 0, 200)).expect("fits");
        feed(&mut receiver, fragment(lane, 1, 1, 300, 200, 100)).expect("fits");
        assert_eq!(drain(&mut receiver), 2, "{lane:?}");
        // Resends: whole, the first fragment, a range cut elsewhere.
        for resend in [(0, 100, 0, 100), (1, 300, 0, 200), (1, 300, 50, 250)] {
            let (sequence, total, offset, len) = resend;
            feed(
                &mut receiver,
                fragment(lane, 1, sequence, total, offset, len),
            )
            .expect("fits");
            duplicates += 1;
        }
        assert_eq!(receiver.duplicate_fragments, duplicates, "{lane:?}");
    }
    // Unreliable: a resend of a delivered message, and of a fragment of a
    // message still being reassembled.
    feed(&mut receiver, fragment(Lane::Unreliable, 0, 0, 50, 0, 50)).expect("fits");
    feed(&mut receiver, fragment(Lane::Unreliable, 0, 0, 50, 0, 50)).expect("fits");
    feed(&mut receiver, fragment(Lane::Unreliable, 0, 1, 300, 0, 100)).expect("fits");
    feed(&mut receiver, fragment(Lane::Unreliable, 0, 1, 300, 0, 100)).expect("fits");
    feed(
        &mut receiver,
        fragment(Lane::Unreliable, 0, 1, 300, 100, 200),
    )
    .expect("fits");
    duplicates += 2;
    // Sequenced: the newest again is a duplicate; an older one is stale.
    feed(
        &mut receiver,
        fragment(Lane::UnreliableSequenced, 2, 5, 10, 0, 10),
    )
    .expect("fits");
    feed(
        &mut receiver,
        fragment(Lane::UnreliableSequenced, 2, 5, 10, 0, 10),
    )
    .expect("fits");
    feed(
        &mut receiver,
        fragment(Lane::UnreliableSequenced, 2, 4, 10, 0, 10),
    )
    .expect("fits");
    duplicates += 1;

    assert_eq!(drain(&mut receiver), 3);
    assert_eq!(receiver.duplicate_fragments, duplicates);
    assert_eq!(receiver.stale_fragments, 1);
    assert_eq!(receiver.messages_delivered(), 3 * 2 + 3);
    assert_eq!(receiver.buffer().held(), 0, "{:?}", receiver.buffer());
    // Only the first copy of each reliable byte counts against the window,
    // and each message's overhead once.
    assert_eq!(receiver.data_received, 3 * (400 + 2 * MESSAGE_OVERHEAD));
}

#[test]
fn a_discarded_receiver_delivers_nothing_and_still_knows_its_duplicates() {
    let mut receiver = receiver();
    for sequence in 0..3 {
        feed(
            &mut receiver,
            fragment(Lane::ReliableOrdered, 0, sequence, 100, 0, 100),
        )
        .expect("fits");
    }
    // Sequence 4 arrives early: it waits for 3.
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 4, 100, 0, 100),
    )
    .expect("fits");
    feed(
        &mut receiver,
        fragment(Lane::ReliableUnordered, 0, 0, 100, 0, 100),
    )
    .expect("fits");
    assert_eq!(receiver.messages_delivered(), 4);
    assert_eq!(receiver.buffer().reliable_early, 100);

    receiver.discard();
    assert_eq!(receiver.buffer().held(), 0, "{:?}", receiver.buffer());
    assert!(receiver.pop().is_none());
    // Resends of what was delivered, or held early, are duplicates.
    for (lane, sequence) in [
        (Lane::ReliableOrdered, 1),
        (Lane::ReliableOrdered, 4),
        (Lane::ReliableUnordered, 0),
    ] {
        feed(&mut receiver, fragment(lane, 0, sequence, 100, 0, 100)).expect("fits");
    }
    assert_eq!(receiver.duplicate_fragments, 3);
    // New messages complete but are not delivered, and 3 releases 4.
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 3, 100, 0, 100),
    )
    .expect("fits");
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 4, 100, 0, 100),
    )
    .expect("fits");
    assert_eq!(receiver.duplicate_fragments, 4);
    assert_eq!(receiver.messages_delivered(), 4);
    assert!(receiver.pop().is_none());
    assert_eq!(receiver.buffer().held(), 0, "{:?}", receiver.buffer());
    assert_eq!(receiver.data_received, 6 * (100 + MESSAGE_OVERHEAD));
}

#[test]
fn a_hostile_peer_stays_within_the_bound_and_is_closed_or_dropped_past_it() {
    let mut receiver = receiver();
    // Unread unreliable messages up to their budget, overhead included;
    // one more is dropped.
    let each = 1024 - MESSAGE_OVERHEAD;
    for sequence in 0..5 {
        feed(
            &mut receiver,
            fragment(Lane::Unreliable, 0, sequence, each, 0, each),
        )
        .expect("never a violation");
    }
    assert_eq!(receiver.unreliable_dropped, 1);
    // A partial unreliable message announcing more than the budget holds
    // is dropped at once.
    feed(
        &mut receiver,
        fragment(Lane::Unreliable, 0, 10, BUDGET, 0, 1),
    )
    .expect("never a violation");
    assert_eq!(receiver.unreliable_dropped, 2);
    // Complete reliable messages up to the window, overhead included ...
    let mut sequence = 0;
    let each = MAX_MESSAGE - MESSAGE_OVERHEAD;
    while receiver.data_received + MAX_MESSAGE <= WINDOW {
        feed(
            &mut receiver,
            fragment(Lane::ReliableOrdered, 0, sequence, each, 0, each),
        )
        .expect("within the window");
        sequence += 1;
    }
    assert_eq!(receiver.data_received, WINDOW);
    // ... then anything more passes the window and closes the connection.
    let delivered = receiver.messages_delivered();
    assert!(matches!(
        feed(
            &mut receiver,
            fragment(Lane::ReliableOrdered, 0, sequence, 0, 0, 0)
        ),
        Err(Violation::FlowControl { .. })
    ));
    assert!(matches!(
        feed(
            &mut receiver,
            fragment(Lane::ReliableUnordered, 0, 0, MAX_MESSAGE, 0, 1)
        ),
        Err(Violation::FlowControl { .. })
    ));
    let held = receiver.buffer();
    assert_eq!(held.reliable_unread, 4 * each);
    assert!(held.held() <= held.bound(), "{held:?}");
    assert_eq!(receiver.messages_delivered(), delivered);
    assert_eq!(receiver.data_received, WINDOW);
    assert_eq!(receiver.charged(), receiver.cost_walked());
}

#[test]
fn zero_length_messages_use_up_the_window_by_their_overhead() {
    let mut receiver = receiver();
    let fits = WINDOW / MESSAGE_OVERHEAD;
    for sequence in 0..fits {
        feed(
            &mut receiver,
            fragment(Lane::ReliableOrdered, 0, sequence, 0, 0, 0),
        )
        .expect("within the window");
    }
    assert!(matches!(
        feed(
            &mut receiver,
            fragment(Lane::ReliableOrdered, 0, fits, 0, 0, 0)
        ),
        Err(Violation::FlowControl { .. })
    ));
    assert_eq!(receiver.ready_len() as u64, fits);
    assert_eq!(receiver.charged(), fits * MESSAGE_OVERHEAD);
    // Reading them gives their overhead back to the window.
    drain(&mut receiver);
    assert_eq!(receiver.overhead_read(), WINDOW);
    assert_eq!(receiver.charged(), 0);
}

#[test]
fn messages_ahead_past_the_early_cap_are_refused_and_the_awaited_one_still_taken() {
    let mut receiver = receiver();
    for sequence in 1..=MAX_EARLY as u64 {
        feed(
            &mut receiver,
            fragment(Lane::ReliableOrdered, 0, sequence, 10, 0, 10),
        )
        .expect("fits");
        assert!(!receiver.take_refused());
    }
    // One more ahead, on any reliable lane, is refused and not counted.
    let received = receiver.data_received;
    for lane in [Lane::ReliableOrdered, Lane::ReliableUnordered] {
        feed(&mut receiver, fragment(lane, 0, 9, 10, 0, 10)).expect("refused");
        assert!(receiver.take_refused(), "{lane:?}");
    }
    assert_eq!(receiver.data_received, received);
    assert_eq!(receiver.refused_fragments, 2);
    // The awaited message always fits, and releases the early ones.
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 0, 10, 0, 10),
    )
    .expect("fits");
    assert!(!receiver.take_refused());
    assert_eq!(drain(&mut receiver), MAX_EARLY + 1);
    // Now the refused one is taken when it comes again.
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 9, 10, 0, 10),
    )
    .expect("fits");
    assert!(!receiver.take_refused());
    assert_eq!(receiver.charged(), receiver.cost_walked());
}

#[test]
fn a_message_too_far_ahead_is_refused() {
    let mut receiver = receiver();
    for (lane, sequence, refused) in [
        (Lane::ReliableOrdered, MAX_LEAD, false),
        (Lane::ReliableOrdered, MAX_LEAD + 1, true),
        (Lane::ReliableOrdered, u64::MAX, true),
        (Lane::Session, MAX_LEAD + 1, true),
        (Lane::ReliableUnordered, MAX_LEAD, false),
        (Lane::ReliableUnordered, MAX_LEAD + 1, true),
    ] {
        feed(&mut receiver, fragment(lane, 0, sequence, 0, 0, 0)).expect("never a violation");
        assert_eq!(receiver.take_refused(), refused, "{lane:?} {sequence}");
    }
}

#[test]
fn an_exhausted_endpoint_budget_refuses_data_ahead_and_drops_unreliable_data() {
    let budget = MemoryBudget::new(2500);
    let mut other = receiver();
    other.join_budget(&budget);
    feed(
        &mut other,
        fragment(Lane::ReliableOrdered, 0, 0, 1500, 0, 1500),
    )
    .expect("fits");
    assert_eq!(budget.used(), 1500 + MESSAGE_OVERHEAD);
    let mut receiver = receiver();
    receiver.join_budget(&budget);
    // With nothing waiting, even the awaited message is refused.
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 0, 1000, 0, 1000),
    )
    .expect("refused");
    assert!(receiver.take_refused());
    // Ahead of what the lane waits for: taken while it fits ...
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 1, 100, 0, 100),
    )
    .expect("fits");
    assert!(!receiver.take_refused());
    // ... refused once it does not.
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 2, 1000, 0, 1000),
    )
    .expect("refused");
    assert!(receiver.take_refused());
    // Unreliable: dropped.
    feed(
        &mut receiver,
        fragment(Lane::Unreliable, 0, 0, 1000, 0, 1000),
    )
    .expect("dropped");
    assert_eq!(receiver.unreliable_dropped, 1);
    // With a message waiting for it, the awaited one is taken even so:
    // the lane never stalls.
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 0, 1000, 0, 1000),
    )
    .expect("fits");
    assert!(!receiver.take_refused());
    // Reading, or dropping a receiver, gives its share back.
    drain(&mut other);
    drop(other);
    assert_eq!(budget.used(), 1100 + 2 * MESSAGE_OVERHEAD);
    drop(receiver);
    assert_eq!(budget.used(), 0);
}

#[test]
fn the_account_matches_what_is_held_through_every_lane_and_a_discard() {
    let mut receiver = receiver();
    let steps = [
        fragment(Lane::ReliableOrdered, 0, 1, 3000, 0, 1000),
        fragment(Lane::ReliableOrdered, 0, 2, 100, 0, 100),
        fragment(Lane::ReliableOrdered, 0, 1, 3000, 2000, 1000),
        fragment(Lane::ReliableUnordered, 0, 3, 2000, 1000, 1000),
        fragment(Lane::Session, 0, 0, 10, 0, 10),
        fragment(Lane::Unreliable, 0, 5, 2000, 0, 500),
        fragment(Lane::Unreliable, 0, 6, 50, 0, 50),
        fragment(Lane::UnreliableSequenced, 1, 2, 900, 0, 300),
        fragment(Lane::ReliableOrdered, 0, 1, 3000, 1000, 1000),
        fragment(Lane::UnreliableSequenced, 1, 3, 20, 0, 20),
    ];
    for step in steps {
        feed(&mut receiver, step).expect("fits");
        assert_eq!(receiver.charged(), receiver.cost_walked());
    }
    assert_eq!(receiver.pop().map(|m| m.data.len()), Some(50));
    assert_eq!(receiver.charged(), receiver.cost_walked());
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 0, 10, 0, 10),
    )
    .expect("fits");
    assert_eq!(receiver.charged(), receiver.cost_walked());
    receiver.discard();
    assert_eq!(receiver.charged(), receiver.cost_walked());
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, 4, 10, 0, 10),
    )
    .expect("fits");
    assert_eq!(receiver.charged(), receiver.cost_walked());
}
