//! The receiver fed fragments by hand: duplicates of what it delivered are
//! counted and dropped on every lane, a discarded receiver still knows
//! them, and a hostile peer cannot make it hold more than its bound, while
//! it can come close to it.

use super::*;

const WINDOW: u64 = 16 << 10;
const MAX_MESSAGE: u64 = 4 << 10;
const BUDGET: u64 = 4 << 10;

fn receiver() -> Receiver {
    Receiver::new(RecvLimits {
        max_message: MAX_MESSAGE,
        channels: 4,
        window: WINDOW,
        unreliable_budget: BUDGET,
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
    // Only the first copy of each reliable byte counts against the window.
    assert_eq!(receiver.data_received, 3 * 400);
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
    assert_eq!(receiver.data_received, 6 * 100);
}

#[test]
fn a_hostile_peer_fills_nine_tenths_of_the_bound_and_no_more() {
    let mut receiver = receiver();
    // Unread unreliable messages up to their budget; one more is dropped.
    for sequence in 0..5 {
        feed(
            &mut receiver,
            fragment(Lane::Unreliable, 0, sequence, 1024, 0, 1024),
        )
        .expect("never a violation");
    }
    assert_eq!(receiver.unreliable_dropped, 1);
    // A partial unreliable message reserving the whole budget; another
    // evicts it.
    for sequence in 10..12 {
        feed(
            &mut receiver,
            fragment(Lane::Unreliable, 0, sequence, BUDGET, 0, 1),
        )
        .expect("never a violation");
    }
    assert_eq!(receiver.unreliable_dropped, 2);
    // Complete reliable messages up to the window, less five bytes ...
    let mut sequence = 0;
    let mut received = 0;
    while received + MAX_MESSAGE <= WINDOW - 5 {
        feed(
            &mut receiver,
            fragment(
                Lane::ReliableOrdered,
                0,
                sequence,
                MAX_MESSAGE,
                0,
                MAX_MESSAGE,
            ),
        )
        .expect("within the window");
        received += MAX_MESSAGE;
        sequence += 1;
    }
    let rest = WINDOW - 5 - received;
    feed(
        &mut receiver,
        fragment(Lane::ReliableOrdered, 0, sequence, rest, 0, rest),
    )
    .expect("within the window");
    // ... then one byte of each of five partial maximum messages: they
    // reserve the window plus one message, all the reservation allows.
    for sequence in 0..5 {
        feed(
            &mut receiver,
            fragment(Lane::ReliableOrdered, 1, sequence, MAX_MESSAGE, 0, 1),
        )
        .expect("within the reservation");
    }

    let held = receiver.buffer();
    assert_eq!(held.reliable_unread, WINDOW - 5);
    assert_eq!(held.reliable_partial, WINDOW + MAX_MESSAGE);
    assert_eq!(
        (held.unreliable_unread, held.unreliable_partial),
        (BUDGET, BUDGET)
    );
    assert!(held.held() <= held.bound(), "{held:?}");
    assert!(held.held() * 10 >= held.bound() * 9, "{held:?}");

    // Anything more is refused or dropped: nothing more is counted,
    // delivered or held.
    let delivered = receiver.messages_delivered();
    assert!(matches!(
        feed(
            &mut receiver,
            fragment(Lane::ReliableOrdered, 1, 5, MAX_MESSAGE, 0, 1)
        ),
        Err(Violation::FlowControl { .. })
    ));
    assert!(matches!(
        feed(
            &mut receiver,
            fragment(Lane::ReliableUnordered, 0, 0, 10, 0, 10)
        ),
        Err(Violation::FlowControl { .. })
    ));
    feed(
        &mut receiver,
        fragment(Lane::Unreliable, 0, 20, 1024, 0, 1024),
    )
    .expect("dropped");
    feed(
        &mut receiver,
        fragment(Lane::UnreliableSequenced, 0, 0, BUDGET, 0, 1),
    )
    .expect("dropped");
    let after = receiver.buffer();
    assert!(after.held() <= held.held(), "{held:?} then {after:?}");
    assert_eq!(receiver.messages_delivered(), delivered);
    assert_eq!(receiver.data_received, WINDOW);
}
