//! In-process tests of the queue; cross-process ones live in `tests/`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::{Error, Region, RegionOptions};

fn queue(capacity: u64, max_message: u64) -> (Arc<Region>, Producer, Consumer) {
    let region = Arc::new(
        RegionOptions::new()
            .layout(layout(capacity, max_message).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    let (producer, consumer) = channel(region.clone()).unwrap();
    (region, producer, consumer)
}

fn recv_vec(consumer: &mut Consumer) -> Result<Vec<u8>, RecvError> {
    consumer.try_recv().map(|m| m.to_vec())
}

/// The stamp of slot `index`, for tests that corrupt or inspect it.
fn stamp_word(region: &Region, index: u64) -> &AtomicU64 {
    let stride = slot_stride(region.layout().max_message);
    let offset = CONTROL_SIZE + index * stride;
    assert!(offset + 8 <= region.data_len());
    // SAFETY: a slot's first word inside the data area, 8-aligned; an
    // atomic may alias the queue's memory.
    unsafe { &*(region.data_ptr().as_ptr().add(offset as usize) as *const AtomicU64) }
}

/// The length word of slot `index`.
fn length_word(region: &Region, index: u64) -> &AtomicU64 {
    let stride = slot_stride(region.layout().max_message);
    let offset = CONTROL_SIZE + index * stride + 8;
    // SAFETY: as in `stamp_word`.
    unsafe { &*(region.data_ptr().as_ptr().add(offset as usize) as *const AtomicU64) }
}

/// Receives, retrying while the queue reports Empty, for at most 5 s.
fn recv_within(consumer: &mut Consumer) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match recv_vec(consumer) {
            Ok(msg) => return msg,
            Err(RecvError::Empty) if Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn messages_of_every_size_arrive_in_order_and_fill_exactly_capacity() {
    let (_r, mut p, mut c) = queue(8, 100);
    for round in 0..10u8 {
        for len in 0..=100usize {
            let msg: Vec<u8> = (0..len).map(|i| i as u8 ^ round).collect();
            p.try_send(&msg).unwrap();
            assert_eq!(recv_vec(&mut c).unwrap(), msg);
        }
    }
    assert_eq!(recv_vec(&mut c), Err(RecvError::Empty));
    for i in 0..8u8 {
        p.try_send(&[i]).unwrap();
    }
    assert_eq!(p.try_send(b"ninth"), Err(SendError::Full));
    for i in 0..8u8 {
        assert_eq!(recv_vec(&mut c).unwrap(), [i]);
    }
    assert_eq!(recv_vec(&mut c), Err(RecvError::Empty));
    assert_eq!(
        p.try_send(&[0; 101]),
        Err(SendError::TooLarge { len: 101, max: 100 })
    );
}

#[test]
fn grants_commit_or_abandon_and_recv_into_checks_the_buffer() {
    let (_r, mut p, mut c) = queue(4, 16);
    let mut grant = p.try_reserve(5).unwrap();
    grant.copy_from_slice(b"first");
    grant.commit().unwrap();
    drop(p.try_reserve(3).unwrap()); // abandoned: stepped over
    p.try_send(b"third").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(
        c.try_recv_into(&mut small),
        Err(RecvError::BufferTooSmall { needed: 5 })
    );
    let mut buf = [0u8; 16];
    assert_eq!(c.try_recv_into(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"first");
    assert_eq!(recv_vec(&mut c).unwrap(), b"third");
    assert_eq!(recv_vec(&mut c), Err(RecvError::Empty));
    assert_eq!(c.counters(), Counters::default());
}

#[test]
fn clones_are_participants_of_their_own_up_to_the_table_size() {
    let region = Arc::new(
        RegionOptions::new()
            .layout(layout_with_participants(4, 8, 3).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    let (mut p, mut c) = channel(region.clone()).unwrap();
    let mut p2 = p.try_clone().unwrap();
    assert_eq!(region.participants().len(), 3);
    assert!(matches!(
        p.try_clone(),
        Err(Error::TooManyParticipants { slots: 3 })
    ));
    assert!(matches!(
        Consumer::attach(region.clone()),
        Err(Error::TooManyParticipants { slots: 3 })
    ));
    p.try_send(b"a").unwrap();
    p2.try_send(b"b").unwrap();
    assert_eq!(recv_vec(&mut c).unwrap(), b"a");
    assert_eq!(recv_vec(&mut c).unwrap(), b"b");
    drop(p2);
    let _c2 = c.try_clone().unwrap();
}

#[test]
fn the_wrong_kind_of_region_is_refused_both_ways() {
    let spsc = Arc::new(
        RegionOptions::new()
            .layout(crate::spsc::layout(4096, 64).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    assert!(matches!(
        Producer::attach(spsc.clone()),
        Err(Error::WrongKind {
            expected: crate::Kind::Mpmc,
            found: crate::Kind::Spsc
        })
    ));
    let (mpmc, _p, _c) = queue(4, 8);
    assert!(matches!(
        crate::spsc::Consumer::attach(mpmc),
        Err(Error::WrongKind {
            expected: crate::Kind::Spsc,
            found: crate::Kind::Mpmc
        })
    ));
}

#[test]
fn threads_deliver_every_message_exactly_once_in_each_producers_order() {
    const PRODUCERS: u64 = 4;
    const CONSUMERS: usize = 4;
    const EACH: u64 = 50_000;
    let (_r, p, c) = queue(64, 16);
    let total = std::sync::atomic::AtomicU64::new(0);
    let total = &total;
    let received: Vec<Vec<(u64, u64)>> = std::thread::scope(|scope| {
        for id in 0..PRODUCERS {
            let mut p = p.try_clone().unwrap();
            scope.spawn(move || {
                for seq in 0..EACH {
                    let mut msg = [0u8; 16];
                    msg[..8].copy_from_slice(&id.to_le_bytes());
                    msg[8..].copy_from_slice(&seq.to_le_bytes());
                    while let Err(e) = p.try_send(&msg) {
                        assert_eq!(e, SendError::Full);
                        std::thread::yield_now();
                    }
                }
            });
        }
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let mut c = c.try_clone().unwrap();
                scope.spawn(move || {
                    let mut got = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while total.load(std::sync::atomic::Ordering::Relaxed) < PRODUCERS * EACH {
                        assert!(Instant::now() < deadline, "messages missing");
                        let mut buf = [0u8; 16];
                        match c.try_recv_into(&mut buf) {
                            Ok(16) => {
                                total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let id = u64::from_le_bytes(buf[..8].try_into().unwrap());
                                let seq = u64::from_le_bytes(buf[8..].try_into().unwrap());
                                got.push((id, seq));
                            }
                            Err(RecvError::Empty) => std::thread::yield_now(),
                            other => panic!("{other:?}"),
                        }
                    }
                    got
                })
            })
            .collect();
        consumers.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut seen: HashMap<u64, Vec<bool>> = HashMap::new();
    for got in &received {
        let mut last: HashMap<u64, u64> = HashMap::new();
        for &(id, seq) in got {
            if let Some(&prev) = last.get(&id) {
                assert!(seq > prev, "producer {id}: {seq} after {prev}");
            }
            last.insert(id, seq);
            let flags = seen.entry(id).or_insert_with(|| vec![false; EACH as usize]);
            assert!(!flags[seq as usize], "producer {id} message {seq} twice");
            flags[seq as usize] = true;
        }
    }
    assert_eq!(seen.len() as u64, PRODUCERS);
    assert!(
        seen.values().all(|flags| flags.iter().all(|&f| f)),
        "a message was lost"
    );
}

#[test]
fn a_producer_that_dies_mid_write_is_stepped_over_not_delivered() {
    let (_r, mut p, mut c) = queue(4, 16);
    let mut doomed = p.try_clone().unwrap();
    p.try_send(b"before").unwrap();
    let position = doomed.claim(8).unwrap();
    // Half-written: the payload is there but was never published.
    // SAFETY: the claimed slot's payload.
    unsafe {
        doomed
            .ring
            .slots
            .copy_in(doomed.ring.payload(position), b"half")
    };
    doomed.die();
    p.try_send(b"after").unwrap();
    assert_eq!(recv_vec(&mut c).unwrap(), b"before");
    // Stuck on the dead writer's slot until recovery kicks in (1 ms).
    assert_eq!(recv_within(&mut c), b"after");
    assert_eq!(
        c.counters(),
        Counters {
            skipped: 1,
            lost: 0
        }
    );
    assert_eq!(recv_vec(&mut c), Err(RecvError::Empty));
}

#[test]
fn a_consumer_that_dies_mid_read_loses_that_message_and_no_other() {
    let (_r, mut p, mut c) = queue(2, 16);
    let mut doomed = c.try_clone().unwrap();
    p.try_send(b"read by the dead").unwrap();
    p.try_send(b"second").unwrap();
    let (position, _) = doomed.claim(usize::MAX).unwrap();
    assert_eq!(position, 0);
    doomed.die();
    assert_eq!(recv_vec(&mut c).unwrap(), b"second");
    // The queue is full until the dead reader's slot is recovered.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match p.try_send(b"third") {
            Ok(()) => break,
            Err(SendError::Full) if Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        p.counters(),
        Counters {
            skipped: 0,
            lost: 1
        }
    );
    assert_eq!(recv_vec(&mut c).unwrap(), b"third");
}

#[test]
fn impossible_stamps_and_lengths_are_reported() {
    let (region, mut p, mut c) = queue(4, 16);
    // An undefined state.
    stamp_word(&region, 0).store(7 << STATE_SHIFT, Ordering::Relaxed);
    assert!(matches!(
        c.try_recv().map(|m| m.len()),
        Err(RecvError::Corrupted(_))
    ));
    assert!(matches!(p.try_send(b"x"), Err(SendError::Corrupted(_))));
    // A claimed slot that names nobody; an unclaimed one that names someone.
    stamp_word(&region, 0).store((State::Writing as u64) << STATE_SHIFT, Ordering::Relaxed);
    assert!(matches!(
        c.try_recv().map(|m| m.len()),
        Err(RecvError::Corrupted(_))
    ));
    stamp_word(&region, 0).store((State::Full as u64) << STATE_SHIFT | 3, Ordering::Relaxed);
    assert!(matches!(
        c.try_recv().map(|m| m.len()),
        Err(RecvError::Corrupted(_))
    ));
    // A full slot with a length over the maximum: reported, and its slot
    // freed so the queue goes on.
    stamp_word(&region, 0).store((State::Full as u64) << STATE_SHIFT, Ordering::Relaxed);
    length_word(&region, 0).store(17, Ordering::Relaxed);
    assert!(matches!(
        c.try_recv().map(|m| m.len()),
        Err(RecvError::Corrupted(_))
    ));
    p.try_send(b"fine").unwrap();
    assert_eq!(recv_vec(&mut c).unwrap(), b"fine");
    // A lap from nowhere.
    stamp_word(&region, 2).store(99 << LAP_SHIFT, Ordering::Relaxed);
    assert!(matches!(
        c.try_recv().map(|m| m.len()),
        Err(RecvError::Corrupted(_))
    ));
}

#[test]
fn a_stamp_naming_a_participant_past_the_table_is_never_reaped() {
    let (region, _p, mut c) = queue(4, 16);
    let writing_by_nobody = (State::Writing as u64) << STATE_SHIFT | 0xfff0;
    stamp_word(&region, 0).store(writing_by_nobody, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_millis(20);
    while Instant::now() < deadline {
        assert_eq!(recv_vec(&mut c), Err(RecvError::Empty));
    }
    assert_eq!(c.counters(), Counters::default());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any values in the control block and the slots: every call returns,
    /// with a message no longer than the maximum or an error.
    #[test]
    fn random_corruption_never_panics_or_hangs(
        words in proptest::collection::vec((0u64..(CONTROL_SIZE / 8 + 4 * 3), any::<u64>()), 1..12),
        sends in 0usize..6,
    ) {
        let (region, mut p, mut c) = queue(4, 8);
        for _ in 0..sends {
            let _ = p.try_send(b"12345678");
        }
        for (word, value) in words {
            let offset = word * 8;
            // SAFETY: inside the data area (control block + 4 slots of 24).
            let target = unsafe { &*(region.data_ptr().as_ptr().add(offset as usize) as *const AtomicU64) };
            target.store(value, Ordering::Relaxed);
        }
        for _ in 0..8 {
            match p.try_send(b"abc") {
                Ok(()) | Err(SendError::Full) | Err(SendError::Corrupted(_)) => {}
                Err(e) => prop_assert!(false, "{e}"),
            }
            match c.try_recv().map(|m| m.len()) {
                Ok(len) => prop_assert!(len <= 8),
                Err(RecvError::Empty) | Err(RecvError::Corrupted(_)) => {}
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}

/// Issue 13, item 5: `mem::forget` of a grant or a read guard is safe
/// code. A handle that leaves with one outstanding repairs the slot it
/// names, as a reap of it would (a forgotten grant's message is skipped, a
/// forgotten guard's is lost), so nobody waits on a stamp naming an entry
/// that is gone.
#[test]
fn a_handle_leaving_with_a_forgotten_grant_or_guard_repairs_its_slot() {
    let (_r, mut p, mut c) = queue(4, 8);
    let mut leaker = p.try_clone().unwrap();
    core::mem::forget(leaker.try_reserve(3).unwrap()); // slot 0
    drop(leaker);
    for msg in [b"one", b"two", b"six"] {
        p.try_send(msg).unwrap();
    }
    // The forgotten grant's slot is stepped over at once, not waited on.
    assert_eq!(recv_vec(&mut c).unwrap(), b"one");
    assert_eq!(
        c.counters(),
        Counters {
            skipped: 1,
            lost: 0
        }
    );

    let mut leaker = c.try_clone().unwrap();
    core::mem::forget(leaker.try_recv().unwrap()); // "two", slot 2
    drop(leaker);
    assert_eq!(recv_vec(&mut c).unwrap(), b"six");
    // A lap on, slots 0 to 2 are free again; slot 2's reader left.
    for msg in [b"sev", b"eig", b"nin"] {
        p.try_send(msg).unwrap();
    }
    assert_eq!(
        p.counters(),
        Counters {
            skipped: 1,
            lost: 1
        }
    );
    for msg in [b"sev", b"eig", b"nin"] {
        assert_eq!(recv_vec(&mut c).unwrap(), msg);
    }
    assert_eq!(recv_vec(&mut c), Err(RecvError::Empty));
}

/// A reaper claims `doomed`'s dead entry and dies, after recovering what
/// it held if `recovered`, before it could free the entry.
fn reaper_dies_reaping(c: &Consumer, index: usize, recovered: bool) {
    let members = c.ring.members;
    let reaping = members
        .table
        .start_reap(index, &members.liveness)
        .expect("a dead entry is claimed for reaping");
    if recovered {
        c.ring.recover(index);
    }
    reaping.die();
}

/// Issue 13, item 2: a reaper that dies mid-reap (before or after it
/// repaired the dead producer's slot) leaves the entry `REAPING` with
/// nobody holding its lock; the next handle stuck on that slot takes the
/// reap over, redoes the recovery (counted once) and frees the entry (at
/// once if stuck on its slot, else on a liveness tick), and
/// `participants()` lists the entry, dead, meanwhile.
#[test]
fn a_reaper_that_dies_mid_reap_is_taken_over() {
    for recovered in [false, true] {
        let (region, mut p, mut c) = queue(4, 8);
        let mut doomed = p.try_clone().unwrap();
        let index = doomed.member.token.index();
        doomed.claim(8).unwrap(); // slot 0, half-written forever
        doomed.die();
        p.try_send(b"after").unwrap();
        reaper_dies_reaping(&c, index, recovered);
        let listed = region.participants();
        assert!(
            listed.iter().any(|e| e.index == index && !e.alive),
            "{listed:?}"
        );
        assert_eq!(recv_within(&mut c), b"after");
        assert_eq!(
            c.counters(),
            Counters {
                skipped: 1,
                lost: 0
            }
        );
        drop(p);
        // The liveness ticks of a blocked call reap what is left.
        let outcome = c.recv_timeout(Duration::from_secs(5)).map(|m| m.to_vec());
        assert_eq!(outcome, Err(RecvError::Disconnected));
        assert!(region.participants().iter().all(|e| e.index != index));
    }
}

/// Issue 13, item 2, the other side: the last producer dies, its reaper
/// dies mid-reap; a blocked consumer's liveness ticks take the reap over
/// and it sees `Disconnected`, not a timeout.
#[test]
fn a_blocked_consumer_takes_over_a_dead_reap_of_the_last_producer() {
    let (_r, p, mut c) = queue(4, 8);
    let index = p.member.token.index();
    p.die();
    reaper_dies_reaping(&c, index, false);
    let outcome = c.recv_timeout(Duration::from_secs(5)).map(|m| m.to_vec());
    assert_eq!(outcome, Err(RecvError::Disconnected));
}
