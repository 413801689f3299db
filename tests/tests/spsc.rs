//! The SPSC ring across real processes: a forked child and an unrelated
//! spawned program stream millions of self-checking messages of random size;
//! the role claims hold across processes and survive `kill -9`.

use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::spsc::{self, Consumer, Producer, RecvError, SendError};
use ipc_core::{Region, RegionOptions};
use ipc_tests::fork::ForkedChild;
use ipc_tests::name::ShmName;
use ipc_tests::payload::PayloadGen;
use ipc_tests::spawn::{Finished, SpawnedChild};
use ipc_tests::wait::BoundedWait;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

const PEER: &str = env!("CARGO_BIN_EXE_spsc-peer");
const TEN_MILLION: u64 = 10_000_000;
/// Longest any wait for the peer may last without progress before the test
/// fails.
const STALL: Duration = Duration::from_secs(60);

fn ring_options(capacity: u64, max_message: u64) -> RegionOptions {
    RegionOptions::new().layout(spsc::layout(capacity, max_message).unwrap())
}

/// Runs `spsc-peer args…` to its end: its exit code and stderr.
fn run_peer(args: &[&str]) -> (i32, String) {
    let Finished { status, stderr, .. } = SpawnedChild::run(PEER, args).finish(STALL);
    (status.code().unwrap_or(-1), stderr)
}

/// Receives and verifies `count` messages from `peer`, watching it while
/// the ring is empty so that a dead peer fails the test instead of hanging
/// it.
fn consume_and_verify(consumer: &mut Consumer, gen: PayloadGen, count: u64, peer: Pid) {
    let mut seq = 0u64;
    let mut buf = vec![0u8; gen.max_len()];
    let mut wait = BoundedWait::new("a message", STALL).watching(peer);
    while seq < count {
        // Use all three ways of receiving, in turns.
        let received = match seq % 3 {
            0 => match consumer.try_recv() {
                Ok(msg) => {
                    gen.verify(seq, &msg)
                        .unwrap_or_else(|e| panic!("message {seq}: {e}"));
                    1
                }
                Err(RecvError::Empty) => 0,
                Err(e) => panic!("message {seq}: {e}"),
            },
            1 => match consumer.try_recv_into(&mut buf) {
                Ok(n) => {
                    gen.verify(seq, &buf[..n])
                        .unwrap_or_else(|e| panic!("message {seq}: {e}"));
                    1
                }
                Err(RecvError::Empty) => 0,
                Err(e) => panic!("message {seq}: {e}"),
            },
            _ => {
                let first = seq;
                let limit = (count - seq).min(200) as usize;
                let n = consumer
                    .drain(limit, |msg| {
                        gen.verify(seq, msg)
                            .unwrap_or_else(|e| panic!("message {seq}: {e}"));
                        seq += 1;
                    })
                    .unwrap_or_else(|e| panic!("message {seq}: {e}"));
                seq = first;
                n as u64
            }
        };
        seq += received;
        if received > 0 {
            wait.reset();
        } else if let Err(e) = wait.snooze() {
            panic!("after {seq} of {count} messages: {e}");
        }
    }
    // Nothing more: empty, or disconnected if the producer has left already.
    assert!(matches!(
        consumer.try_recv().map(|m| m.len()),
        Err(RecvError::Empty | RecvError::Disconnected)
    ));
}

/// The forked child's side: produce `count` messages, mixing single sends,
/// zero-copy grants and batches. Only non-allocating work: the parent is a
/// multi-threaded test harness.
fn produce(producer: &mut Producer, gen: PayloadGen, count: u64) -> Result<(), SendError> {
    let mut seq = 0u64;
    let mut scratch = [0u8; 256];
    let mut wait = BoundedWait::new("room in the ring", STALL);
    while seq < count {
        let len = gen.len_of(seq);
        let sent = match seq % 4 {
            0 => {
                gen.fill(seq, &mut scratch[..len]);
                producer.try_send(&scratch[..len]).map(|()| 1)
            }
            1 | 2 => producer.try_reserve(len).map(|mut grant| {
                gen.fill(seq, &mut grant);
                grant.commit();
                1
            }),
            _ => {
                let mut batch = producer.batch();
                let mut n = 0;
                while n < 16 && seq + n < count {
                    let len = gen.len_of(seq + n);
                    match batch.try_reserve(len) {
                        Ok(mut grant) => {
                            gen.fill(seq + n, &mut grant);
                            grant.commit();
                            n += 1;
                        }
                        Err(SendError::Full) => break,
                        Err(e) => return Err(e),
                    }
                }
                if n == 0 {
                    Err(SendError::Full)
                } else {
                    Ok(n)
                }
            }
        };
        match sent {
            Ok(n) => {
                seq += n;
                wait.reset();
            }
            // Stalled for a minute: give up.
            Err(SendError::Full) => wait.snooze().map_err(|_| SendError::Full)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[test]
fn ten_million_random_messages_from_a_forked_child() {
    const SEED: u64 = 0x5eed_0001;
    let gen = PayloadGen::random(SEED, 256);
    let region = Arc::new(ring_options(1 << 16, 256).create_anonymous().unwrap());
    let produce_all = || match Producer::attach(region.clone()) {
        Ok(mut producer) => match produce(&mut producer, gen, TEN_MILLION) {
            Ok(()) => 0,
            Err(_) => 3,
        },
        Err(_) => 2,
    };
    // SAFETY: the child only attaches and produces (no allocation, no locks),
    // which is sound in a child of a threaded process.
    let child = unsafe { ForkedChild::fork(produce_all) }.unwrap();
    let mut consumer = Consumer::attach(region).unwrap();
    consume_and_verify(&mut consumer, gen, TEN_MILLION, child.pid());
    let status = child.wait(STALL).unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn ten_million_random_messages_from_an_unrelated_process_over_named_shm() {
    const SEED: u64 = 0x5eed_0002;
    let name = ShmName::new("spsc-shm");
    let gen = PayloadGen::random(SEED, 1000);
    let region = Arc::new(ring_options(1 << 18, 1000).create_shm(&name).unwrap());
    let mut consumer = Consumer::attach(region).unwrap();
    let peer = SpawnedChild::run(
        PEER,
        &[
            "produce-shm",
            &name,
            &TEN_MILLION.to_string(),
            "1000",
            &SEED.to_string(),
        ],
    );
    consume_and_verify(&mut consumer, gen, TEN_MILLION, peer.pid());
    let done = peer.finish(STALL);
    done.assert_success();
}

#[test]
fn an_unrelated_process_consumes_a_memfd_ring_handed_over_a_socket() {
    const SEED: u64 = 0x5eed_0003;
    const COUNT: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("sock");
    let listener = UnixListener::bind(&socket_path).unwrap();
    let region = Arc::new(
        ring_options(1 << 16, 512)
            .create_memfd("spsc-test")
            .unwrap(),
    );
    let peer = SpawnedChild::run(
        PEER,
        &[
            "consume-memfd",
            socket_path.to_str().unwrap(),
            &COUNT.to_string(),
            "512",
            &SEED.to_string(),
        ],
    );
    let (socket, _) = listener.accept().unwrap();
    region.send_fd(&socket).unwrap();
    let mut producer = Producer::attach(region).unwrap();
    let gen = PayloadGen::random(SEED, 512);
    for seq in 0..COUNT {
        let mut wait = BoundedWait::new("room in the ring", STALL).watching(peer.pid());
        loop {
            match producer.try_reserve(gen.len_of(seq)) {
                Ok(mut grant) => {
                    gen.fill(seq, &mut grant);
                    grant.commit();
                    break;
                }
                Err(SendError::Full) => wait
                    .snooze()
                    .unwrap_or_else(|e| panic!("message {seq}: {e}")),
                Err(e) => panic!("{e}"),
            }
        }
    }
    let done = peer.finish(STALL);
    done.assert_success();
    dir.close().unwrap();
}

#[test]
fn a_second_producer_in_another_process_is_refused_while_the_first_lives() {
    let name = ShmName::new("spsc-claim");
    let region = Arc::new(ring_options(4096, 64).create_shm(&name).unwrap());
    let producer = Producer::attach(region.clone()).unwrap();

    let (code, err) = run_peer(&["attach-producer", &name]);
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("already attached"), "{err}");
    assert!(err.contains(&std::process::id().to_string()), "{err}");

    drop(producer);
    let (code, err) = run_peer(&["attach-producer", &name]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_claim_of_a_producer_killed_with_sigkill_is_taken_over() {
    let region: Arc<Region> = Arc::new(ring_options(4096, 64).create_anonymous().unwrap());
    let (ready_r, ready_w) = nix::unistd::pipe().unwrap();
    let send_then_hang = || {
        let sent = Producer::attach(region.clone())
            .map(|mut producer| (producer.try_send(b"from the dead").is_ok(), producer));
        match sent {
            Ok((true, _producer)) => {
                let _ = nix::unistd::write(&ready_w, b"r");
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            _ => 2,
        }
    };
    // SAFETY: the child attaches, sends, writes one byte to a pipe and
    // sleeps until killed: no allocation, no locks.
    let child = unsafe { ForkedChild::fork(send_then_hang) }.unwrap();
    drop(ready_w);
    let mut byte = [0u8; 1];
    assert_eq!(
        nix::unistd::read(&ready_r, &mut byte).unwrap(),
        1,
        "child failed"
    );

    let pid = child.pid();
    assert!(matches!(
        Producer::attach(region.clone()),
        Err(ipc_core::Error::AlreadyAttached { role: "producer", pid: p }) if p == pid.as_raw() as u32
    ));
    kill(pid, Signal::SIGKILL).unwrap();
    assert!(matches!(
        child.wait(STALL).unwrap(),
        WaitStatus::Signaled(_, Signal::SIGKILL, _)
    ));

    let mut producer = Producer::attach(region.clone()).expect("dead holder's claim is free");
    producer.try_send(b"from the living").unwrap();
    let mut consumer = Consumer::attach(region).unwrap();
    assert_eq!(&*consumer.try_recv().unwrap(), b"from the dead");
    assert_eq!(&*consumer.try_recv().unwrap(), b"from the living");
}

#[test]
fn a_hostile_process_scribbling_over_a_live_ring_causes_errors_not_crashes() {
    const MAX: u64 = 200;
    let region = Arc::new(ring_options(4096, MAX).create_anonymous().unwrap());
    // Attached before the scribbler starts, which may corrupt `head` at once.
    let (mut producer, mut consumer) = spsc::channel(region.clone()).unwrap();
    let words = (spsc::CONTROL_SIZE + 4096) / 8;
    let scribble = || {
        let started = Instant::now();
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
        while started.elapsed() < Duration::from_millis(1500) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let offset = (x % words) * 8;
            // Leave the claim words (control lines 2 and 3) alone: they
            // only decide who may attach.
            if (256..512).contains(&offset) {
                continue;
            }
            let value = match x >> 60 {
                0..=5 => x.rotate_left(23),
                6..=9 => x % 8192, // small positions
                10..=12 => (0x2147_534d << 32) | ((x >> 8) % 300), // "MSG!" with a length
                _ => (0x2144_4150 << 32) | ((x >> 8) % 4096), // "PAD!" with a length
            };
            // SAFETY: `offset` is 8-aligned and inside the data area;
            // an atomic store may race with the ring's accesses.
            let word = unsafe {
                &*(region.data_ptr().as_ptr().add(offset as usize)
                    as *const std::sync::atomic::AtomicU64)
            };
            word.store(value, std::sync::atomic::Ordering::Relaxed);
            std::hint::spin_loop();
        }
        0
    };
    // SAFETY: the child only stores into atomics of the shared mapping: no
    // allocation, no locks.
    let child = unsafe { ForkedChild::fork(scribble) }.unwrap();
    let (mut ok, mut corrupted) = (0u64, 0u64);
    let mut buf = [0u8; MAX as usize];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        for len in [0usize, 7, 64, 200] {
            match producer.try_send(&buf[..len]) {
                Ok(()) | Err(SendError::Full) => {}
                Err(SendError::Corrupted(_)) => corrupted += 1,
                Err(e) => panic!("{e}"),
            }
        }
        match consumer.try_recv() {
            Ok(msg) => {
                assert!(msg.len() <= MAX as usize);
                ok += 1;
            }
            Err(RecvError::Empty) => {}
            Err(RecvError::Corrupted(_)) => corrupted += 1,
            Err(e) => panic!("{e}"),
        }
        match consumer.try_recv_into(&mut buf) {
            Ok(n) => assert!(n <= MAX as usize),
            Err(RecvError::Corrupted(_)) => corrupted += 1,
            Err(_) => {}
        }
        match consumer.drain(8, |msg| assert!(msg.len() <= MAX as usize)) {
            Ok(_) | Err(RecvError::Empty) => {}
            Err(RecvError::Corrupted(_)) => corrupted += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let status = child.wait(STALL).unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    // The scribbler must really have hit the ring for this test to mean anything.
    assert!(
        corrupted > 0,
        "no corruption was ever detected ({ok} messages read)"
    );
}
