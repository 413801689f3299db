//! Loom models of the ring: every interleaving (within the preemption bound)
//! of a producer and a consumer on a tiny ring on the heap.
//!
//! Run with `RUSTFLAGS="--cfg ipc_core_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p
//! ipc-core --release --lib`. Besides the assertions here, loom checks every
//! record byte the two sides touch (see `sync::Bytes`), so a missing
//! happens-before edge between writing a record and reading it, or between
//! reading it and overwriting it, fails the model.

use std::ptr::NonNull;
use std::sync::Arc;

use loom::thread;

use super::*;
use crate::participants::HeapTable;
use crate::sync::HeapBytes;
use crate::wait::WaitStrategy;

/// Participant slots of the models' rings.
const SLOTS: usize = 4;

/// A ring's memory on the heap, standing in for a region.
struct HeapRing {
    control: Box<Control>,
    bytes: HeapBytes,
    table: HeapTable,
}

fn heap_ring(capacity: usize, max_message: u64) -> (Ring, Arc<HeapRing>) {
    heap_ring_with(capacity, max_message, false)
}

/// A heap ring whose model parks on its signals (see `barrier::light`).
fn heap_ring_with(capacity: usize, max_message: u64, sleeping: bool) -> (Ring, Arc<HeapRing>) {
    let owner = Arc::new(HeapRing {
        control: Box::new(Control::new(sleeping)),
        bytes: HeapBytes::new(capacity),
        table: HeapTable::new(SLOTS),
    });
    let members = owner.table.members();
    // SAFETY: the control block, bytes and table live in `owner`, which
    // every handle keeps alive; the geometry is valid (asserted below).
    let ring = unsafe {
        Ring::new(
            NonNull::from(&*owner.control),
            owner.bytes.view(),
            members,
            max_message,
        )
    };
    assert!(check_geometry(capacity as u64, max_message).is_ok());
    (ring, owner)
}

fn me() -> Identity {
    Identity::default()
}

fn handles(capacity: usize, max_message: u64) -> (Producer, Consumer) {
    handles_with(capacity, max_message, false)
}

/// Handles of a ring whose model parks on its signals.
fn sleeping_handles(capacity: usize, max_message: u64) -> (Producer, Consumer) {
    handles_with(capacity, max_message, true)
}

fn handles_with(capacity: usize, max_message: u64, sleeping: bool) -> (Producer, Consumer) {
    let (ring, owner) = heap_ring_with(capacity, max_message, sleeping);
    let producer = Producer::attach_ring(ring, owner.clone(), me()).unwrap();
    let consumer = Consumer::attach_ring(ring, owner, me()).unwrap();
    (producer, consumer)
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

fn recv(consumer: &mut Consumer) -> Vec<u8> {
    loop {
        match consumer.try_recv() {
            Ok(msg) => return msg.to_vec(),
            Err(RecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Messages of 0 to 8 bytes around a 32-byte ring: the third needs a padding
/// record at the wrap point, and the producer must wait for space.
#[test]
fn messages_across_the_wrap_point() {
    loom::model(|| {
        let (mut producer, mut consumer) = handles(32, 8);
        let messages: [&[u8]; 4] = [b"", b"12345678", b"abcdefgh", b"xyz"];
        let t = thread::spawn(move || {
            for msg in messages {
                send(&mut producer, msg);
            }
        });
        for msg in messages {
            assert_eq!(recv(&mut consumer), msg);
        }
        t.join().unwrap();
    });
}

/// An abandoned reservation publishes nothing; a committed one arrives whole.
#[test]
fn reserve_commit_and_abandon() {
    loom::model(|| {
        let (mut producer, mut consumer) = handles(32, 8);
        let t = thread::spawn(move || {
            {
                let mut grant = producer.try_reserve(4).unwrap();
                grant.copy_from_slice(b"drop");
            }
            let mut grant = producer.try_reserve(4).unwrap();
            grant.copy_from_slice(b"kept");
            grant.commit();
            send(&mut producer, b"last");
        });
        assert_eq!(recv(&mut consumer), b"kept");
        assert_eq!(recv(&mut consumer), b"last");
        t.join().unwrap();
    });
}

/// A batch's messages become visible together: a consumer that sees the
/// first sees the second without waiting.
#[test]
fn batch_publication_is_atomic() {
    loom::model(|| {
        let (mut producer, mut consumer) = handles(64, 8);
        let t = thread::spawn(move || {
            let mut batch = producer.batch();
            batch.try_send(b"one").unwrap();
            batch.try_send(b"two").unwrap();
            batch.publish();
        });
        assert_eq!(recv(&mut consumer), b"one");
        assert_eq!(consumer.try_recv().map(|m| m.to_vec()), Ok(b"two".to_vec()));
        t.join().unwrap();
    });
}

/// The ring fills (two records of 16 bytes in 32) and drains; the consumer
/// sees every message once, in order, through `recv_into` and `drain`.
#[test]
fn full_and_empty() {
    loom::model(|| {
        let (mut producer, mut consumer) = handles(32, 8);
        let t = thread::spawn(move || {
            for i in 0..4u8 {
                send(&mut producer, &[i; 8]);
            }
        });
        let mut got = Vec::new();
        while got.len() < 4 {
            let mut buf = [0u8; 8];
            match consumer.try_recv_into(&mut buf) {
                Ok(8) => got.push(buf[0]),
                Ok(n) => panic!("short message of {n} bytes"),
                Err(RecvError::Empty) => {
                    let n = consumer.drain(2, |m| got.push(m[0])).unwrap();
                    if n == 0 {
                        thread::yield_now();
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, [0, 1, 2, 3]);
        t.join().unwrap();
    });
}

/// Two would-be producers race for the role: exactly one wins while both
/// hold on to what they got, and after the winner leaves the role is free.
#[test]
fn one_producer_claim_wins() {
    loom::model(|| {
        let (ring, owner) = heap_ring(32, 8);
        let spawn = || {
            let owner = owner.clone();
            thread::spawn(move || Producer::attach_ring(ring, owner, me()).ok())
        };
        let (a, b) = (spawn(), spawn());
        let handles = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(handles.iter().filter(|h| h.is_some()).count(), 1);
        drop(handles);
        assert!(Producer::attach_ring(ring, owner, me()).is_ok());
    });
}

/// A producer leaves while a second one tries to take over. If the second
/// gets the role, its claim's Acquire must carry the first one's `tail`, so
/// its message lands after the first's instead of over it.
#[test]
fn producer_handover_keeps_order() {
    loom::model(|| {
        let (ring, owner) = heap_ring(64, 8);
        let mut consumer = Consumer::attach_ring(ring, owner.clone(), me()).unwrap();
        let mut first = Producer::attach_ring(ring, owner.clone(), me()).unwrap();
        let a = thread::spawn(move || {
            first.try_send(b"first").unwrap();
            drop(first);
        });
        let b = thread::spawn(move || match Producer::attach_ring(ring, owner, me()) {
            Ok(mut second) => {
                second.try_send(b"second").unwrap();
                true
            }
            Err(_) => false,
        });
        a.join().unwrap();
        let second_sent = b.join().unwrap();
        assert_eq!(
            consumer.try_recv().map(|m| m.to_vec()),
            Ok(b"first".to_vec())
        );
        if second_sent {
            assert_eq!(
                consumer.try_recv().map(|m| m.to_vec()),
                Ok(b"second".to_vec())
            );
        }
        // Both producers have left (the second drops with its thread).
        assert_eq!(
            consumer.try_recv().map(|m| m.to_vec()),
            Err(RecvError::Disconnected)
        );
    });
}

/// A consumer reads a message and dies without detaching (no destructor
/// runs, only the "kernel" drops its lock); a new one takes its claim over
/// once it is seen dead, and must start after what the dead one released:
/// no message twice, none lost.
#[test]
fn takeover_from_a_dead_consumer() {
    loom::model(|| {
        let (ring, owner) = heap_ring(64, 8);
        let mut producer = Producer::attach_ring(ring, owner.clone(), me()).unwrap();
        producer.try_send(b"first").unwrap();
        producer.try_send(b"second").unwrap();
        let dying = Consumer::attach_ring(ring, owner.clone(), me()).unwrap();
        let a = thread::spawn(move || {
            let mut dying = dying;
            assert_eq!(recv(&mut dying), b"first");
            dying.die();
        });
        let b = thread::spawn(move || {
            let mut next = loop {
                match Consumer::attach_ring(ring, owner.clone(), me()) {
                    Ok(consumer) => break consumer,
                    Err(_) => thread::yield_now(),
                }
            };
            assert_eq!(recv(&mut next), b"second");
        });
        a.join().unwrap();
        b.join().unwrap();
        drop(producer);
    });
}

/// A participant registers while another dies holding a claim: the table
/// never hands one slot to two live participants, the dead one's claim is
/// taken over, and its slot is reaped for reuse.
#[test]
fn registration_racing_with_a_death() {
    loom::model(|| {
        let (ring, owner) = heap_ring(64, 8);
        let doomed = Producer::attach_ring(ring, owner.clone(), me()).unwrap();
        let doomed_index = doomed.member.token.index();
        let a = thread::spawn(move || doomed.die());
        let b = {
            let owner = owner.clone();
            thread::spawn(move || loop {
                match Producer::attach_ring(ring, owner.clone(), me()) {
                    Ok(producer) => break producer,
                    Err(AttachError::Held(_)) => thread::yield_now(),
                    Err(e) => panic!("{e:?}"),
                }
            })
        };
        a.join().unwrap();
        let successor = b.join().unwrap();
        let taken: Vec<usize> = ring
            .members
            .table
            .entries(&ring.members.liveness)
            .into_iter()
            .filter(|entry| entry.alive)
            .map(|entry| entry.index)
            .collect();
        assert_eq!(taken, [successor.member.token.index()]);
        // The dead entry was reaped when its claim was taken over, unless
        // the successor registered in that very slot after the death.
        let dead_left = ring
            .members
            .table
            .entries(&ring.members.liveness)
            .iter()
            .any(|entry| !entry.alive && entry.index == doomed_index);
        assert!(!dead_left);
        drop(successor);
    });
}

/// A consumer that sleeps at once (`Park`) for each message: no wake-up is
/// lost, whatever the interleaving of its announcing itself and the
/// producer's publishing (a lost one leaves it asleep: loom reports the
/// deadlock).
#[test]
fn a_parked_consumer_is_always_woken() {
    loom::model(|| {
        let (mut producer, mut consumer) = sleeping_handles(64, 8);
        consumer.set_wait_strategy(WaitStrategy::Park);
        let t = thread::spawn(move || {
            producer.try_send(b"one").unwrap();
            producer.try_send(b"two").unwrap();
        });
        assert_eq!(&*consumer.recv().unwrap(), b"one");
        assert_eq!(&*consumer.recv().unwrap(), b"two");
        t.join().unwrap();
    });
}

/// A producer that sleeps at once when the ring is full is woken when the
/// consumer frees room.
#[test]
fn a_parked_producer_is_always_woken() {
    loom::model(|| {
        // Two 16-byte records fill the 32-byte ring's usable room.
        let (mut producer, mut consumer) = sleeping_handles(32, 8);
        producer.set_wait_strategy(WaitStrategy::Park);
        producer.try_send(b"12345678").unwrap();
        let t = thread::spawn(move || {
            producer.send(b"abcdefgh").unwrap();
        });
        assert_eq!(recv(&mut consumer), b"12345678");
        t.join().unwrap();
        assert_eq!(recv(&mut consumer), b"abcdefgh");
    });
}

/// A producer that leaves wakes a parked consumer, which drains what was
/// sent and then learns the producer is gone.
#[test]
fn a_parked_consumer_sees_the_producer_leave() {
    loom::model(|| {
        let (mut producer, mut consumer) = sleeping_handles(64, 8);
        consumer.set_wait_strategy(WaitStrategy::Park);
        let t = thread::spawn(move || {
            producer.try_send(b"last").unwrap();
            drop(producer);
        });
        assert_eq!(&*consumer.recv().unwrap(), b"last");
        assert_eq!(
            consumer.recv().map(|m| m.len()),
            Err(RecvError::Disconnected)
        );
        t.join().unwrap();
    });
}

/// One message and nothing after it (the producer stays attached until the
/// consumer has it, so no later notification can make up for a lost one):
/// the parked consumer must be woken by that single notification.
#[test]
fn a_parked_consumer_is_woken_by_a_single_message() {
    loom::model(|| {
        let (mut producer, mut consumer) = sleeping_handles(64, 8);
        consumer.set_wait_strategy(WaitStrategy::Park);
        let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let t = {
            let done = done.clone();
            thread::spawn(move || {
                producer.try_send(b"only").unwrap();
                // Acquire: pairs with the Release store below (a plain
                // go-ahead; nothing is read after it).
                while !done.load(Ordering::Acquire) {
                    thread::yield_now();
                }
            })
        };
        assert_eq!(&*consumer.recv().unwrap(), b"only");
        // Release: see above.
        done.store(true, Ordering::Release);
        t.join().unwrap();
    });
}

/// A consumer that died asleep is uncounted from the data signal when its
/// successor takes its claim over (else every later message would pay a
/// wake-up for it), and the successor, parked at once, is still woken by
/// the one message sent meanwhile.
#[test]
fn a_parked_consumer_is_always_woken_after_one_died_asleep() {
    loom::model(|| {
        let (mut producer, doomed) = sleeping_handles(64, 8);
        let (ring, owner) = (doomed.ring, doomed._owner.clone());
        doomed.die_asleep();
        let t = thread::spawn(move || {
            let mut next = Consumer::attach_ring(ring, owner, me()).unwrap();
            next.set_wait_strategy(WaitStrategy::Park);
            assert_eq!(&*next.recv().unwrap(), b"one");
        });
        producer.try_send(b"one").unwrap();
        t.join().unwrap();
        assert_eq!(ring.control().data.sleepers(), 0);
    });
}
