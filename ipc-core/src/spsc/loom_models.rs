//! Loom models of the ring: every interleaving (within the preemption bound)
//! of a producer and a consumer on a tiny ring on the heap.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p
//! ipc-core --release --lib`. Besides the assertions here, loom checks every
//! record byte the two sides touch (see `sync::Bytes`), so a missing
//! happens-before edge between writing a record and reading it, or between
//! reading it and overwriting it, fails the model.

use std::ptr::NonNull;
use std::sync::Arc;

use loom::thread;

use super::*;
use crate::sync::HeapBytes;

/// A ring's memory on the heap, standing in for a region.
struct HeapRing {
    control: Box<Control>,
    bytes: HeapBytes,
}

fn heap_ring(capacity: usize, max_message: u64) -> (Ring, Arc<HeapRing>) {
    let owner = Arc::new(HeapRing {
        control: Box::new(Control::new()),
        bytes: HeapBytes::new(capacity),
    });
    // SAFETY: the control block and bytes live in `owner`, which every handle
    // keeps alive; the geometry is valid (asserted below).
    let ring = unsafe {
        Ring::new(
            NonNull::from(&*owner.control),
            owner.bytes.view(),
            max_message,
        )
    };
    assert!(check_geometry(capacity as u64, max_message).is_ok());
    (ring, owner)
}

fn claimant(id: u64) -> Claimant {
    Claimant {
        id,
        alive: |_| true,
        is_current_process: |_| true,
    }
}

fn handles(capacity: usize, max_message: u64) -> (Producer, Consumer) {
    let (ring, owner) = heap_ring(capacity, max_message);
    let producer = Producer::attach_ring(ring, owner.clone(), claimant(1)).unwrap();
    let consumer = Consumer::attach_ring(ring, owner, claimant(2)).unwrap();
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
            match consumer.recv_into(&mut buf) {
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
        let spawn = |id| {
            let owner = owner.clone();
            thread::spawn(move || Producer::attach_ring(ring, owner, claimant(id)).ok())
        };
        let (a, b) = (spawn(1), spawn(2));
        let handles = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(handles.iter().filter(|h| h.is_some()).count(), 1);
        drop(handles);
        assert!(Producer::attach_ring(ring, owner, claimant(3)).is_ok());
    });
}

/// A producer leaves while a second one tries to take over. If the second
/// gets the role, its claim's Acquire must carry the first one's `tail`, so
/// its message lands after the first's instead of over it.
#[test]
fn producer_handover_keeps_order() {
    loom::model(|| {
        let (ring, owner) = heap_ring(64, 8);
        let mut consumer = Consumer::attach_ring(ring, owner.clone(), claimant(9)).unwrap();
        let mut first = Producer::attach_ring(ring, owner.clone(), claimant(1)).unwrap();
        let a = thread::spawn(move || {
            first.try_send(b"first").unwrap();
            drop(first);
        });
        let b = thread::spawn(
            move || match Producer::attach_ring(ring, owner, claimant(2)) {
                Ok(mut second) => {
                    second.try_send(b"second").unwrap();
                    true
                }
                Err(_) => false,
            },
        );
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
        assert_eq!(
            consumer.try_recv().map(|m| m.to_vec()),
            Err(RecvError::Empty)
        );
    });
}

loom::lazy_static! {
    /// Whether consumer 9 of `takeover_from_a_dead_consumer` has died.
    static ref CONSUMER_9_DEAD: loom::sync::atomic::AtomicBool =
        loom::sync::atomic::AtomicBool::new(false);
}

/// The death decision, stubbed: consumer 9 is dead once it said so.
/// Acquire: pairs with the Release store of its death. A real death notice
/// orders the same way: the dead process's stores all happened before the
/// kernel reports it gone (its exit drains them), and the observer learns
/// it through a syscall.
fn consumer_9_alive(id: u64) -> bool {
    id != 9 || !CONSUMER_9_DEAD.load(Ordering::Acquire)
}

/// A consumer reads a message and dies without detaching (no destructor
/// runs); a new one takes its claim over once it is dead, and must start
/// after what the dead one released: no message twice, none lost.
#[test]
fn takeover_from_a_dead_consumer() {
    loom::model(|| {
        let (ring, owner) = heap_ring(64, 8);
        let mut producer = Producer::attach_ring(ring, owner.clone(), claimant(1)).unwrap();
        producer.try_send(b"first").unwrap();
        producer.try_send(b"second").unwrap();
        let dying = Consumer::attach_ring(ring, owner.clone(), claimant(9)).unwrap();
        let a = thread::spawn(move || {
            let mut dying = dying;
            assert_eq!(recv(&mut dying), b"first");
            std::mem::forget(dying);
            // Release: pairs with the Acquire in `consumer_9_alive`.
            CONSUMER_9_DEAD.store(true, Ordering::Release);
        });
        let b = thread::spawn(move || {
            let successor = Claimant {
                id: 10,
                alive: consumer_9_alive,
                is_current_process: |_| true,
            };
            let mut next = loop {
                match Consumer::attach_ring(ring, owner.clone(), successor) {
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
