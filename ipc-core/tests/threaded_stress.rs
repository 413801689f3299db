//! A threaded stress of every ring and of the participant table, small
//! enough for ThreadSanitizer (`scripts/tsan.sh` runs it there): SPSC and
//! MPMC traffic with try and blocking calls, while other threads attach and
//! detach handles (registering and freeing participant entries) and list
//! the participants. Every message is checked: each producer's stream
//! arrives complete, once, in order per consumer.
//!
//! No test harness (see `Cargo.toml`): `main` runs each stress in turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ipc_core::wait::WaitStrategy;
use ipc_core::{mpmc, spsc, RegionOptions};

/// Messages per producer: enough to wrap small rings many times, few
/// enough for a sanitizer on two shared cores.
const MESSAGES: u64 = 20_000;
const LIMIT: Duration = Duration::from_secs(60);

fn message(producer: u64, seq: u64) -> [u8; 24] {
    let mut m = [0u8; 24];
    m[..8].copy_from_slice(&producer.to_le_bytes());
    m[8..16].copy_from_slice(&seq.to_le_bytes());
    let check = (producer << 40 ^ seq).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    m[16..].copy_from_slice(&check.to_le_bytes());
    m
}

fn read(m: &[u8]) -> (u64, u64) {
    assert_eq!(m.len(), 24, "length");
    let word = |i: usize| u64::from_le_bytes(m[i * 8..i * 8 + 8].try_into().unwrap());
    let (producer, seq) = (word(0), word(1));
    let check = (producer << 40 ^ seq).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    assert_eq!(word(2), check, "corrupt message {producer}/{seq}");
    (producer, seq)
}

fn spsc_threads_with_handles_reattached() {
    let region = Arc::new(
        RegionOptions::new()
            .layout(spsc::layout(256, 64).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    let (producer, consumer) = spsc::channel(region.clone()).unwrap();
    let sender = thread::spawn(move || {
        let mut producer = Some(producer);
        let region = region.clone();
        for seq in 0..MESSAGES {
            // Now and then leave and attach again: the table and the
            // producer claim change hands between threads.
            if seq % 1000 == 999 {
                drop(producer.take());
                producer = Some(spsc::Producer::attach(region.clone()).unwrap());
            }
            let p = producer.as_mut().unwrap();
            if seq % 2 == 0 {
                p.send_timeout(&message(0, seq), LIMIT).unwrap();
            } else {
                loop {
                    match p.try_send(&message(0, seq)) {
                        Ok(()) => break,
                        Err(spsc::SendError::Full) => thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
        let _ = region.participants();
    });
    let mut consumer = consumer;
    consumer.set_wait_strategy(WaitStrategy::Park);
    let mut buf = [0u8; 64];
    let mut seq = 0;
    while seq < MESSAGES {
        let got = if seq % 3 == 0 {
            consumer.recv_into(&mut buf).map(|n| read(&buf[..n]))
        } else {
            consumer.recv_timeout(LIMIT).map(|m| read(&m))
        };
        match got {
            Ok(got) => assert_eq!(got, (0, seq)),
            // Between a producer's leaving and the next one's attaching.
            Err(spsc::RecvError::Disconnected) => {
                thread::yield_now();
                continue;
            }
            Err(e) => panic!("{e}"),
        }
        seq += 1;
    }
    sender.join().unwrap();
}

fn mpmc_threads_with_participants_churning() {
    const PRODUCERS: u64 = 2;
    let region = Arc::new(
        RegionOptions::new()
            .layout(mpmc::layout_with_participants(8, 64, 16).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    let (producer, consumer) = mpmc::channel(region.clone()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // Attaches and detaches handles of both roles while the traffic runs.
    let churn = {
        let (region, done) = (region.clone(), done.clone());
        thread::spawn(move || {
            let mut rounds = 0u64;
            while !done.load(Ordering::Relaxed) {
                let p = mpmc::Producer::attach(region.clone()).unwrap();
                let c = p.try_clone().ok();
                let _ = region.participants();
                drop(p);
                drop(c);
                let c = mpmc::Consumer::attach(region.clone()).unwrap();
                drop(c);
                rounds += 1;
                thread::yield_now();
            }
            rounds
        })
    };
    let mut senders = Vec::new();
    for id in 0..PRODUCERS {
        let mut p = producer.try_clone().unwrap();
        senders.push(thread::spawn(move || {
            for seq in 0..MESSAGES {
                if seq % 2 == 0 {
                    p.send_timeout(&message(id, seq), LIMIT).unwrap();
                } else {
                    let mut grant = p
                        .reserve_deadline(24, std::time::Instant::now() + LIMIT)
                        .unwrap();
                    grant.copy_from_slice(&message(id, seq));
                    grant.commit().unwrap();
                }
            }
        }));
    }
    drop(producer);
    let mut receivers = Vec::new();
    for park in [false, true] {
        let mut c = consumer.try_clone().unwrap();
        if park {
            c.set_wait_strategy(WaitStrategy::Park);
        }
        receivers.push(thread::spawn(move || {
            let mut last = [None::<u64>; PRODUCERS as usize];
            let mut counts = [0u64; PRODUCERS as usize];
            let mut buf = [0u8; 64];
            loop {
                let got = if park {
                    match c.recv_into_deadline(&mut buf, std::time::Instant::now() + LIMIT) {
                        Ok(n) => read(&buf[..n]),
                        Err(mpmc::RecvError::Disconnected) => break,
                        Err(e) => panic!("{e}"),
                    }
                } else {
                    match c.try_recv() {
                        Ok(m) => read(&m),
                        Err(mpmc::RecvError::Empty) => {
                            thread::yield_now();
                            continue;
                        }
                        Err(mpmc::RecvError::Disconnected) => break,
                        Err(e) => panic!("{e}"),
                    }
                };
                let (id, seq) = (got.0 as usize, got.1);
                assert!(last[id].is_none_or(|l| l < seq), "{id}/{seq} out of order");
                last[id] = Some(seq);
                counts[id] += 1;
            }
            counts
        }));
    }
    drop(consumer);
    for s in senders {
        s.join().unwrap();
    }
    let mut total = [0u64; PRODUCERS as usize];
    for r in receivers {
        for (t, c) in total.iter_mut().zip(r.join().unwrap()) {
            *t += c;
        }
    }
    done.store(true, Ordering::Relaxed);
    let rounds = churn.join().unwrap();
    assert_eq!(total, [MESSAGES; PRODUCERS as usize], "each message once");
    assert!(rounds > 0);
}

fn main() {
    spsc_threads_with_handles_reattached();
    println!("spsc_threads_with_handles_reattached: ok");
    mpmc_threads_with_participants_churning();
    println!("mpmc_threads_with_participants_churning: ok");
}
