//! Loom models of the queue: every interleaving (within the preemption
//! bound) of a few producers and consumers on a queue of 2 slots on the
//! heap. Besides the assertions, loom checks every payload byte through
//! `sync::Bytes`'s trackers, so a missing happens-before between writing a
//! slot and reading it, or reading it and overwriting it, fails a model.
//!
//! Run with `RUSTFLAGS="--cfg ipc_core_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p
//! ipc-core --release --lib`.

use std::ptr::NonNull;
use std::sync::Arc;

use loom::thread;

use super::*;
use crate::participants::HeapTable;
use crate::sync::HeapBytes;
use crate::wait::WaitStrategy;

/// Participant slots of the models' queues.
const SLOTS: usize = 5;

/// A queue's memory on the heap, standing in for a region.
struct HeapQueue {
    control: Box<Control>,
    bytes: HeapBytes,
    table: HeapTable,
}

fn heap_queue(capacity: u64, max_message: u64) -> (Ring, Arc<HeapQueue>) {
    heap_queue_with(capacity, max_message, false)
}

/// A heap queue whose model parks on its signals (see `barrier::light`).
fn heap_queue_with(capacity: u64, max_message: u64, sleeping: bool) -> (Ring, Arc<HeapQueue>) {
    assert!(check_geometry(capacity, max_message).is_ok());
    let owner = Arc::new(HeapQueue {
        control: Box::new(Control::new(sleeping)),
        bytes: HeapBytes::new((capacity * slot_stride(max_message)) as usize),
        table: HeapTable::new(SLOTS),
    });
    // SAFETY: control block, slots and table live in `owner`, which every
    // handle keeps alive; the geometry is valid (asserted above).
    let ring = unsafe {
        Ring::new(
            NonNull::from(&*owner.control),
            owner.bytes.view(),
            owner.table.members(),
            capacity,
            max_message,
        )
    };
    (ring, owner)
}

fn producer(ring: Ring, owner: &Arc<HeapQueue>) -> Producer {
    Producer::attach_ring(ring, owner.clone(), Identity::default()).unwrap()
}

fn consumer(ring: Ring, owner: &Arc<HeapQueue>) -> Consumer {
    Consumer::attach_ring(ring, owner.clone(), Identity::default()).unwrap()
}

fn send(producer: &mut Producer, msg: &[u8]) {
    loop {
        match producer.try_send(msg) {
            Ok(()) => return,
            Err(SendError::Full) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// The next message, waiting for it.
fn recv(consumer: &mut Consumer) -> Vec<u8> {
    loop {
        match consumer.try_recv() {
            Ok(msg) => return msg.to_vec(),
            Err(RecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Up to `tries` attempts at receiving, yielding in between: for threads
/// that must not spin without bound while others spin too (two spinning
/// threads can yield to each other forever under loom).
fn recv_some(consumer: &mut Consumer, tries: usize) -> Vec<u8> {
    let mut got = Vec::new();
    for _ in 0..tries {
        match consumer.try_recv() {
            Ok(msg) => got.push(msg[0]),
            Err(RecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
    got
}

/// Receives everything left, from a queue nobody sends to any more (whose
/// producers may all be gone).
fn drain(consumer: &mut Consumer) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        match consumer.try_recv() {
            Ok(msg) => got.push(msg[0]),
            Err(RecvError::Empty | RecvError::Disconnected) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Two producers, one consumer: both messages arrive once, each whole.
#[test]
fn two_producers_one_consumer() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut c = consumer(ring, &owner);
        let threads: Vec<_> = [b"aaaaaaaa", b"bbbbbbbb"]
            .into_iter()
            .map(|msg| {
                let mut p = producer(ring, &owner);
                thread::spawn(move || send(&mut p, msg))
            })
            .collect();
        let mut got = [recv(&mut c), recv(&mut c)];
        got.sort();
        assert_eq!(got, [b"aaaaaaaa".to_vec(), b"bbbbbbbb".to_vec()]);
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// One producer, two consumers: each message goes to exactly one of them,
/// and a consumer sees its share in the order sent. (The consumers try a
/// bounded number of times; the main thread drains what they left.)
#[test]
fn one_producer_two_consumers() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut p = producer(ring, &owner);
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let mut c = consumer(ring, &owner);
                thread::spawn(move || recv_some(&mut c, 2))
            })
            .collect();
        for i in 1..=2u8 {
            p.try_send(&[i]).unwrap();
        }
        let mut all = Vec::new();
        for t in consumers {
            let got = t.join().unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
            all.extend(got);
        }
        all.extend(drain(&mut consumer(ring, &owner)));
        all.sort();
        assert_eq!(all, [1, 2]);
    });
}

/// Two producers and two consumers around the wrap point of a 2-slot
/// queue (positions 1 and 2, slots 1 then 0): each message delivered once.
/// The main thread is one producer and one consumer (it sends, then tries
/// once to receive); the other consumer tries once too, and the main thread
/// drains what they left.
#[test]
fn two_producers_two_consumers_across_the_wrap() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut main = producer(ring, &owner);
        let mut drainer = consumer(ring, &owner);
        main.try_send(&[0]).unwrap();
        assert_eq!(recv(&mut drainer), [0]);
        let mut other = producer(ring, &owner);
        let mut c = consumer(ring, &owner);
        let second = thread::spawn(move || other.try_send(&[2]).unwrap());
        let taker = thread::spawn(move || recv_some(&mut c, 1));
        main.try_send(&[1]).unwrap();
        let mut all = recv_some(&mut drainer, 1);
        second.join().unwrap();
        all.extend(taker.join().unwrap());
        all.extend(drain(&mut drainer));
        all.sort();
        assert_eq!(all, [1, 2]);
    });
}

/// One producer and one consumer lapping a 2-slot queue twice: the
/// producer overwrites slots the consumer has just read, so the consumer's
/// release and the producer's claim must order the two (loom's trackers
/// see the payload bytes).
#[test]
fn one_producer_one_consumer_lapping() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut p = producer(ring, &owner);
        let mut c = consumer(ring, &owner);
        let t = thread::spawn(move || {
            for i in 1..=4u8 {
                send(&mut p, &[i; 8]);
            }
        });
        for i in 1..=4u8 {
            assert_eq!(recv(&mut c), [i; 8]);
        }
        t.join().unwrap();
    });
}

/// Two consumers while the producer laps the queue: a consumer that loads
/// `head` past a slot must see that slot claimed, never a stamp a lap
/// behind (which it would report as corruption). The main thread produces,
/// and consumes itself when the queue is full.
#[test]
fn consumers_follow_head_across_a_lap() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut p = producer(ring, &owner);
        let mut drainer = consumer(ring, &owner);
        p.try_send(&[1]).unwrap();
        p.try_send(&[2]).unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let mut c = consumer(ring, &owner);
                thread::spawn(move || recv_some(&mut c, 1))
            })
            .collect();
        let mut all = Vec::new();
        loop {
            match p.try_send(&[3]) {
                Ok(()) => break,
                Err(SendError::Full) => all.extend(recv_some(&mut drainer, 1)),
                Err(e) => panic!("{e}"),
            }
        }
        for t in consumers {
            all.extend(t.join().unwrap());
        }
        all.extend(drain(&mut drainer));
        all.sort();
        assert_eq!(all, [1, 2, 3]);
    });
}

/// A producer that loads `tail` after another producer has claimed two
/// positions must see those slots claimed, never an older stamp (which it
/// would report as corruption): the `tail` it loads carries them.
#[test]
fn a_producer_behind_the_tail_sees_claimed_slots() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut first = producer(ring, &owner);
        let mut second = producer(ring, &owner);
        let try_send = |p: &mut Producer, msg: u8| match p.try_send(&[msg]) {
            Ok(()) => Some(msg),
            Err(SendError::Full) => None,
            Err(e) => panic!("{e}"),
        };
        let a = thread::spawn(move || [try_send(&mut first, 1), try_send(&mut first, 2)]);
        let b = thread::spawn(move || try_send(&mut second, 3));
        let mut sent: Vec<u8> = b.join().unwrap().into_iter().collect();
        sent.extend(a.join().unwrap().into_iter().flatten());
        sent.sort();
        let mut got = drain(&mut consumer(ring, &owner));
        got.sort();
        assert_eq!(got, sent);
        assert_eq!(sent.len(), 2, "two slots, three tries: exactly two fit");
    });
}

/// An abandoned grant is stepped over; a committed one arrives whole.
#[test]
fn reserve_commit_and_abandon() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut p = producer(ring, &owner);
        let mut c = consumer(ring, &owner);
        let t = thread::spawn(move || {
            {
                let mut grant = p.try_reserve(4).unwrap();
                grant.copy_from_slice(b"drop");
            }
            let mut grant = p.try_reserve(4).unwrap();
            grant.copy_from_slice(b"kept");
            grant.commit().unwrap();
            send(&mut p, b"last");
        });
        assert_eq!(recv(&mut c), b"kept");
        assert_eq!(recv(&mut c), b"last");
        t.join().unwrap();
    });
}

/// A producer dies between claiming a slot and publishing it; the
/// consumer, stuck behind it, reaps it, skips the half-written message
/// and receives the next one. Nothing half-written is ever delivered.
#[test]
fn a_dead_writers_slot_is_recovered() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut c = consumer(ring, &owner);
        let mut doomed = producer(ring, &owner);
        let mut live = producer(ring, &owner);
        let t = thread::spawn(move || {
            let position = doomed.claim(8).unwrap();
            // SAFETY: the claimed slot's payload.
            unsafe {
                doomed
                    .ring
                    .slots
                    .copy_in(doomed.ring.payload(position), b"halfdone")
            };
            doomed.die();
        });
        let u = thread::spawn(move || send(&mut live, b"complete"));
        assert_eq!(recv(&mut c), b"complete");
        t.join().unwrap();
        u.join().unwrap();
        // Either the live message came first, or the dead slot was skipped.
        assert!(c.counters().skipped <= 1);
    });
}

/// A consumer dies while reading; a producer needing the slot reaps it and
/// the queue goes on: the lost message is counted, not delivered again.
#[test]
fn a_dead_readers_slot_is_recovered() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut p = producer(ring, &owner);
        let mut doomed = consumer(ring, &owner);
        let mut c = consumer(ring, &owner);
        send(&mut p, b"one");
        send(&mut p, b"two");
        // The doomed consumer holds "one" (slot 0) when it dies.
        assert_eq!(doomed.claim(usize::MAX).unwrap().0, 0);
        assert_eq!(recv(&mut c), b"two");
        let t = thread::spawn(move || doomed.die());
        // Needs slot 0: reaps the dead reader once it is dead.
        send(&mut p, b"three");
        assert_eq!(recv(&mut c), b"three");
        t.join().unwrap();
        assert_eq!(
            p.counters(),
            Counters {
                skipped: 0,
                lost: 1
            }
        );
    });
}

/// A consumer reaps a dead reader while a producer waits to reuse its
/// slot: the repair's Release must order the dead reader's reads before
/// the producer's writes (when the producer did not see the death itself).
#[test]
fn a_slot_repaired_by_one_handle_is_reused_by_another() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        let mut p = producer(ring, &owner);
        let mut doomed = consumer(ring, &owner);
        let mut reaper = consumer(ring, &owner);
        // Stays attached, so the consumers are never all gone.
        let mut drainer = consumer(ring, &owner);
        send(&mut p, b"1-------");
        send(&mut p, b"2-------");
        let t = thread::spawn(move || {
            let taken = doomed.claim(usize::MAX).ok().map(|(position, _)| position);
            doomed.die();
            taken
        });
        let u = thread::spawn(move || recv_some(&mut reaper, 2));
        send(&mut p, b"3-------");
        let lost = t.join().unwrap();
        let mut got = u.join().unwrap();
        got.extend(drain(&mut drainer));
        got.sort();
        let dead_took = lost.map(|position| b'1' + position as u8);
        let expected: Vec<u8> = b"123"
            .iter()
            .copied()
            .filter(|&m| Some(m) != dead_took)
            .collect();
        assert_eq!(got, expected);
        // Counted once someone needed the slot and reaped the dead reader.
        assert!(p.counters().lost <= u64::from(lost.is_some()));
    });
}

/// A producer dies mid-write; a reaper claims its entry, repairs its slot
/// (or not yet) and dies before freeing the entry (the lock it took for
/// the reap is dropped as its death). The consumer stuck on the slot, or
/// the liveness tick after, takes the reap over: the live message arrives,
/// the dead one is skipped exactly once, and the dead entry is freed.
#[test]
fn a_reap_whose_reaper_dies_is_taken_over() {
    for repaired in [false, true] {
        reaper_dies_mid_reap(repaired);
    }
}

fn reaper_dies_mid_reap(repaired: bool) {
    loom::model(move || {
        let (ring, owner) = heap_queue(2, 8);
        let mut c = consumer(ring, &owner);
        let mut doomed = producer(ring, &owner);
        let mut live = producer(ring, &owner);
        let index = doomed.member.token.index();
        doomed.claim(8).unwrap();
        doomed.die();
        send(&mut live, b"complete");
        drop(live);
        let t = thread::spawn(move || {
            let members = ring.members;
            if let Some(reaping) = members.table.start_reap(index, &members.liveness) {
                if repaired {
                    ring.recover(index);
                }
                reaping.die();
            }
        });
        assert_eq!(recv(&mut c), b"complete");
        t.join().unwrap();
        ring.reap_dead(Role::Producer);
        assert!(!ring.members.table.has_entry(Role::Producer));
        assert_eq!(c.counters().skipped, 1);
    });
}

/// A participant registers while another dies: the dead one's entry is
/// reaped (its slots repaired) when the table is full, and the newcomer
/// gets a slot no live participant has.
#[test]
fn registration_racing_with_a_death() {
    loom::model(|| {
        let (ring, owner) = heap_queue(2, 8);
        // Fill the table but for one slot; its last live entry dies.
        let keep: Vec<_> = (0..SLOTS - 2).map(|_| consumer(ring, &owner)).collect();
        let doomed = producer(ring, &owner);
        let newcomer = {
            let owner = owner.clone();
            thread::spawn(move || {
                let a = producer(ring, &owner);
                loop {
                    match Producer::attach_ring(ring, owner.clone(), Identity::default()) {
                        Ok(b) => break (a, b),
                        Err(AttachError::Register(RegisterError::Full)) => thread::yield_now(),
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        };
        doomed.die();
        let (a, b) = newcomer.join().unwrap();
        let mut indices: Vec<_> = keep
            .iter()
            .map(|c| c.member.token.index())
            .chain([a.member.token.index(), b.member.token.index()])
            .collect();
        indices.sort();
        indices.dedup();
        assert_eq!(indices.len(), SLOTS);
    });
}

/// A consumer that sleeps at once (`Park`) is woken for every message,
/// whichever of two producers publishes it: no wake-up is lost (a lost one
/// leaves it asleep: loom reports the deadlock).
#[test]
fn a_parked_consumer_is_always_woken() {
    loom::model(|| {
        let (ring, owner) = heap_queue_with(2, 8, true);
        let mut c = consumer(ring, &owner);
        c.set_wait_strategy(WaitStrategy::Park);
        let mut p = producer(ring, &owner);
        let t = thread::spawn(move || {
            p.try_send(b"one").unwrap();
            p.try_send(b"two").unwrap();
        });
        assert_eq!(&*c.recv().unwrap(), b"one");
        assert_eq!(&*c.recv().unwrap(), b"two");
        t.join().unwrap();
    });
}

/// A producer that sleeps at once on a full queue is woken when a consumer
/// frees a slot.
#[test]
fn a_parked_producer_is_always_woken() {
    loom::model(|| {
        let (ring, owner) = heap_queue_with(2, 8, true);
        let mut p = producer(ring, &owner);
        let mut c = consumer(ring, &owner);
        p.set_wait_strategy(WaitStrategy::Park);
        p.try_send(b"one").unwrap();
        p.try_send(b"two").unwrap();
        let t = thread::spawn(move || {
            p.send(b"three").unwrap();
        });
        assert_eq!(recv(&mut c), b"one");
        t.join().unwrap();
        assert_eq!(recv(&mut c), b"two");
        assert_eq!(recv(&mut c), b"three");
    });
}

/// A consumer that died asleep is uncounted from the data signal by its
/// reaper (else every later message would pay a wake-up for it), while a
/// live consumer parked on the same signal stays counted: it is woken when
/// the producer then leaves. (Not a message: a consumer parked on a slot
/// being written, after a membership change it has not seen, spins until
/// the write ends; loom reports that as a livelock.)
#[test]
fn a_parked_consumer_is_always_woken_while_a_dead_sleeper_is_reaped() {
    loom::model(|| {
        let (ring, owner) = heap_queue_with(2, 8, true);
        let p = producer(ring, &owner);
        let mut c = consumer(ring, &owner);
        c.set_wait_strategy(WaitStrategy::Park);
        consumer(ring, &owner).die_asleep();
        let t = thread::spawn(move || {
            assert_eq!(c.recv().map(|m| m.len()), Err(RecvError::Disconnected));
        });
        ring.reap_dead(Role::Consumer);
        drop(p);
        t.join().unwrap();
        assert_eq!(ring.control().data.sleepers(), 0);
    });
}
