//! The MPMC queue across real processes: unrelated programs (named shm) and
//! forked children (anonymous region) send and receive tagged messages in
//! every shape (N to N, N to 1, 1 to N, joining and leaving mid-stream),
//! each delivered exactly once, whole, and in each producer's order per
//! consumer; participants killed with `SIGKILL` between claiming a slot and
//! finishing with it stall nobody; a hostile process scribbling over a live
//! queue causes errors, never crashes or hangs.

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::layout::HEADER_SIZE;
use ipc_core::mpmc::{self, Consumer, Counters, Producer, RecvError, SendError};
use ipc_core::{Region, RegionOptions};
use ipc_tests::fork::ForkedChild;
use ipc_tests::name::ShmName;
use ipc_tests::payload::mix;
use ipc_tests::spawn::{finish_all, Finished, SpawnedChild};
use ipc_tests::tagged::{self, Stream, Tally, TAGGED_LEN};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;

const PEER: &str = env!("CARGO_BIN_EXE_mpmc-peer");
/// Longest a wait for a peer may last without progress.
const STALL: Duration = Duration::from_secs(60);
/// Longest a whole stream of messages may take.
const RUN: Duration = Duration::from_secs(300);

fn options(capacity: u64) -> RegionOptions {
    RegionOptions::new().layout(mpmc::layout(capacity, TAGGED_LEN as u64).unwrap())
}

fn shm_queue(name: &ShmName, capacity: u64) -> Arc<Region> {
    Arc::new(options(capacity).create_shm(name).unwrap())
}

fn peer(args: &[&str]) -> SpawnedChild {
    SpawnedChild::run(PEER, args)
}

/// `mpmc-peer produce`: producer `id` sends `count` messages over `rounds`
/// attachments.
fn producer_peer(name: &str, id: usize, count: u64, rounds: u64) -> SpawnedChild {
    peer(&[
        "produce",
        name,
        &id.to_string(),
        &count.to_string(),
        &rounds.to_string(),
    ])
}

/// `mpmc-peer consume`: up to `limit` messages (0: all) in each of
/// `rounds` attachments.
fn consumer_peer(name: &str, rounds: u64, limit: u64) -> SpawnedChild {
    peer(&["consume", name, &rounds.to_string(), &limit.to_string()])
}

/// The tally a consumer peer printed last.
fn tally_of(done: &Finished) -> Tally {
    let line = done.stdout.lines().last().unwrap_or_default();
    Tally::parse(line).unwrap_or_else(|e| panic!("{}: {e}", done.command))
}

/// Checks that no consumer saw a corrupt message or a producer's messages
/// out of order, and returns their merged tally.
fn merge_checked<'a>(tallies: impl IntoIterator<Item = &'a Tally>) -> Tally {
    let mut merged = Tally::default();
    for tally in tallies {
        merged.merge(tally);
    }
    assert_eq!(merged.corrupt, 0, "corrupt messages delivered: {merged:?}");
    for id in 0..tagged::MAX_PRODUCERS {
        assert_eq!(merged.stream(id).disordered, 0, "producer {id}: {merged:?}");
    }
    merged
}

/// The number after `prefix` in `line`.
fn number_after(line: &str, prefix: &str) -> u64 {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected `{prefix}N`, got {line:?}"))
}

/// Receives one message within [`STALL`] and checks it.
fn recv_tagged(consumer: &mut Consumer) -> tagged::Tag {
    let msg = consumer
        .recv_timeout(STALL)
        .unwrap_or_else(|e| panic!("{e}"));
    tagged::read(&msg).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends producer `id`'s message `seq`, waiting up to [`STALL`].
fn send_tagged(producer: &mut Producer, id: usize, seq: u64) -> Result<(), SendError> {
    let mut msg = [0u8; TAGGED_LEN];
    tagged::fill(id, seq, &mut msg);
    producer.send_timeout(&msg, STALL)
}

/// Issue 8's load test: 4 producer and 4 consumer processes on (here) 2
/// cores, 10 million messages in all: each delivered exactly once, none
/// corrupt, each consumer seeing each producer's messages in order.
#[test]
fn four_producer_and_four_consumer_processes_deliver_ten_million_messages_exactly_once() {
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: u64 = 2_500_000;
    let name = ShmName::new("mpmc-4x4");
    let region = shm_queue(&name, 4096);
    // Held until every producer has finished, so that no consumer takes a
    // moment before the last producer attaches for the end of the stream.
    let gate = Producer::attach(region.clone()).unwrap();
    let started = Instant::now();
    let producers = (0..PRODUCERS)
        .map(|id| producer_peer(&name, id, PER_PRODUCER, 1))
        .collect();
    let consumers = (0..4).map(|_| consumer_peer(&name, 1, 0)).collect();
    finish_all(producers, RUN);
    drop(gate);
    let consumed = finish_all(consumers, RUN);
    let took = started.elapsed();
    let tallies: Vec<Tally> = consumed.iter().map(tally_of).collect();
    let merged = merge_checked(&tallies);
    for id in 0..PRODUCERS {
        assert_eq!(
            *merged.stream(id),
            Stream::of(id, 0..PER_PRODUCER),
            "producer {id}"
        );
    }
    assert_eq!(merged.total(), PRODUCERS as u64 * PER_PRODUCER);
    let per_consumer: Vec<u64> = tallies.iter().map(Tally::total).collect();
    eprintln!(
        "{} messages in {took:.2?} ({:.2} M/s); per consumer {per_consumer:?}",
        merged.total(),
        merged.total() as f64 / took.as_secs_f64() / 1e6
    );
    let consumer = Consumer::attach(region).unwrap();
    assert_eq!(consumer.counters(), Counters::default());
}

/// Three producer processes feed one consumer (this process), which gets
/// every message of each, in that producer's order.
#[test]
fn three_producer_processes_feed_one_consumer_in_each_producers_order() {
    const PER_PRODUCER: u64 = 200_000;
    let name = ShmName::new("mpmc-3to1");
    let region = shm_queue(&name, 1024);
    let gate = Producer::attach(region.clone()).unwrap();
    let mut consumer = Consumer::attach(region).unwrap();
    let producers: Vec<_> = (0..3)
        .map(|id| producer_peer(&name, id, PER_PRODUCER, 1))
        .collect();
    let mut next = [0u64; 3];
    let mut buf = [0u8; TAGGED_LEN];
    for n in 0..3 * PER_PRODUCER {
        let tag = if n % 2 == 0 {
            recv_tagged(&mut consumer)
        } else {
            let len = consumer
                .recv_into_deadline(&mut buf, Instant::now() + STALL)
                .unwrap_or_else(|e| panic!("after {n} messages: {e}"));
            tagged::read(&buf[..len]).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(tag.seq, next[tag.producer], "producer {}", tag.producer);
        next[tag.producer] += 1;
    }
    finish_all(producers, RUN);
    drop(gate);
    assert!(matches!(
        consumer.recv_timeout(STALL).map(|m| m.len()),
        Err(RecvError::Disconnected)
    ));
}

/// One producer (this process) feeds three consumer processes: each message
/// reaches exactly one of them.
#[test]
fn one_producer_feeds_three_consumer_processes_each_message_once() {
    const COUNT: u64 = 600_000;
    let name = ShmName::new("mpmc-1to3");
    let region = shm_queue(&name, 1024);
    let mut producer = Producer::attach(region.clone()).unwrap();
    let consumers = (0..3).map(|_| consumer_peer(&name, 1, 0)).collect();
    // All three compete from the first message on.
    let deadline = Instant::now() + STALL;
    while region.participants().len() < 4 {
        assert!(Instant::now() < deadline, "{:?}", region.participants());
        std::thread::sleep(Duration::from_millis(1));
    }
    for seq in 0..COUNT {
        send_tagged(&mut producer, 0, seq).unwrap_or_else(|e| panic!("message {seq}: {e}"));
    }
    drop(producer);
    let tallies: Vec<Tally> = finish_all(consumers, RUN).iter().map(tally_of).collect();
    assert_eq!(*merge_checked(&tallies).stream(0), Stream::of(0, 0..COUNT));
    let per_consumer: Vec<u64> = tallies.iter().map(Tally::total).collect();
    eprintln!("per consumer {per_consumer:?}");
}

/// Producers and consumers come and go while messages flow: producer
/// processes start in two waves and each detaches and attaches again three
/// times; consumer processes take a few thousand messages per attachment,
/// three attachments each, and are replaced as they exit. Every message is
/// still delivered exactly once.
#[test]
fn producers_and_consumers_attach_and_detach_while_traffic_flows() {
    const PRODUCERS: usize = 6;
    const PER_PRODUCER: u64 = 100_000;
    const CONSUMERS: usize = 3;
    let name = ShmName::new("mpmc-churn");
    let region = shm_queue(&name, 256);
    // An idle producer and consumer of this process's keep each side from
    // seeing the other gone in a moment between two attachments.
    let gate = Producer::attach(region.clone()).unwrap();
    let mut anchor = Consumer::attach(region).unwrap();
    let spawn_consumer = || consumer_peer(&name, 3, 20_000);
    let mut producers: Vec<_> = (0..PRODUCERS / 2)
        .map(|id| producer_peer(&name, id, PER_PRODUCER, 4))
        .collect();
    let mut consumers: Vec<_> = (0..CONSUMERS).map(|_| spawn_consumer()).collect();
    let mut tallies = Vec::new();
    let deadline = Instant::now() + RUN;
    loop {
        for slot in consumers.iter_mut() {
            if !slot.is_running() {
                let done = std::mem::replace(slot, spawn_consumer()).finish(STALL);
                done.assert_success();
                tallies.push(tally_of(&done));
            }
        }
        // The second wave joins once the first consumers have come and gone.
        if producers.len() < PRODUCERS && !tallies.is_empty() {
            producers.extend(
                (PRODUCERS / 2..PRODUCERS).map(|id| producer_peer(&name, id, PER_PRODUCER, 4)),
            );
        }
        if producers.len() == PRODUCERS && producers.iter().all(|p| !p.is_running()) {
            break;
        }
        assert!(Instant::now() < deadline, "still running after {RUN:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    let consumer_processes = tallies.len() + CONSUMERS;
    finish_all(producers, STALL);
    drop(gate);
    let last = finish_all(consumers, RUN);
    tallies.extend(last.iter().map(tally_of));
    // What the last consumers left (they stop at their limits), this
    // process takes.
    let mut rest = Tally::default();
    loop {
        match anchor.recv_timeout(STALL) {
            Ok(msg) => {
                let _ = rest.record(&msg);
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    tallies.push(rest);
    let merged = merge_checked(&tallies);
    for id in 0..PRODUCERS {
        assert_eq!(
            *merged.stream(id),
            Stream::of(id, 0..PER_PRODUCER),
            "producer {id}"
        );
    }
    eprintln!(
        "{consumer_processes} consumer processes; this one took the last {}",
        rest.total()
    );
    assert!(consumer_processes > CONSUMERS, "no consumer came and went");
}

/// Forked children share an anonymous queue: two producers, and a consumer
/// beside this process's own; the child's tally comes back through a pipe.
#[test]
fn forked_producers_and_consumers_share_an_anonymous_queue() {
    const PER_PRODUCER: u64 = 250_000;
    let region = Arc::new(options(1024).create_anonymous().unwrap());
    let gate = Producer::attach(region.clone()).unwrap();
    let mut consumer = Consumer::attach(region.clone()).unwrap();
    let produce = |id: usize| {
        let region = region.clone();
        move || {
            let Ok(mut producer) = Producer::attach(region) else {
                return 2;
            };
            for seq in 0..PER_PRODUCER {
                if send_tagged(&mut producer, id, seq).is_err() {
                    return 3;
                }
            }
            0
        }
    };
    let (tally_r, tally_w) = nix::unistd::pipe().unwrap();
    let consume = || {
        let Ok(mut consumer) = Consumer::attach(region.clone()) else {
            return 2;
        };
        let mut tally = Tally::default();
        let mut buf = [0u8; TAGGED_LEN];
        loop {
            match consumer.recv_into(&mut buf) {
                Ok(n) => {
                    let _ = tally.record(&buf[..n]);
                }
                Err(RecvError::Disconnected) => break,
                Err(_) => return 3,
            }
        }
        let words = tally.to_words();
        // SAFETY: the words of a local array, viewed as its bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(&words))
        };
        // Less than a pipe's buffer: written whole without a reader.
        match nix::unistd::write(&tally_w, bytes) {
            Ok(n) if n == bytes.len() => 0,
            _ => 4,
        }
    };
    // SAFETY: the children attach, send or receive, and write to a pipe:
    // no allocation, no locks (a failed attach returns at once).
    let children = unsafe {
        [
            ForkedChild::fork(produce(0)).unwrap(),
            ForkedChild::fork(produce(1)).unwrap(),
            ForkedChild::fork(consume).unwrap(),
        ]
    };
    drop(tally_w);
    let mut mine = Tally::default();
    let mut gate = Some(gate);
    let deadline = Instant::now() + RUN;
    loop {
        match consumer.recv_timeout(Duration::from_millis(10)) {
            Ok(msg) => {
                let _ = mine.record(&msg);
            }
            Err(RecvError::Timeout) => {}
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
        // Once both producers are done, the gate goes and the stream ends.
        if gate.is_some()
            && children[..2]
                .iter()
                .all(|c| c.try_wait().unwrap().is_some())
        {
            gate = None;
        }
        assert!(Instant::now() < deadline, "still running after {RUN:?}");
    }
    for child in &children {
        let status = child.wait(STALL).unwrap();
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }
    let mut words = [0u64; Tally::WORDS];
    // SAFETY: the array's bytes, written whole by the read below.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            words.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(&words),
        )
    };
    assert_eq!(nix::unistd::read(&tally_r, bytes).unwrap(), bytes.len());
    let theirs = Tally::from_words(&words);
    let merged = merge_checked([&mine, &theirs]);
    for id in 0..2 {
        assert_eq!(
            *merged.stream(id),
            Stream::of(id, 0..PER_PRODUCER),
            "producer {id}"
        );
    }
    eprintln!(
        "this process took {}, the forked consumer {}",
        mine.total(),
        theirs.total()
    );
}

/// Issue 8, section 3: a producer killed (`kill -9`) after claiming a slot
/// and half-writing it stalls the queue only while it lives; then its slot
/// is skipped (counted), the half-written message is never delivered, and
/// the other producer's messages behind it all arrive, once each.
#[test]
fn a_producer_killed_between_claim_and_publish_is_skipped_and_never_delivered() {
    const OTHERS: u64 = 1000;
    let name = ShmName::new("mpmc-dead-writer");
    let region = shm_queue(&name, 16);
    let mut consumer = Consumer::attach(region).unwrap();
    let mut holder = peer(&["hold-grant", &name, "0", "3"]);
    assert_eq!(number_after(&holder.read_line(STALL), "holding "), 3);
    let other = producer_peer(&name, 1, OTHERS, 1);
    let mut tally = Tally::default();
    for _ in 0..3 {
        tally.count(recv_tagged(&mut consumer));
    }
    // While the holder lives, its slot holds everything behind it back.
    let outcome = consumer
        .recv_timeout(Duration::from_millis(200))
        .map(|m| m.to_vec());
    assert_eq!(outcome, Err(RecvError::Timeout));
    assert_eq!(consumer.counters(), Counters::default());

    kill(holder.pid(), Signal::SIGKILL).unwrap();
    holder.wait_ended(STALL);
    let mut buf = [0u8; TAGGED_LEN];
    loop {
        match consumer.recv_into_deadline(&mut buf, Instant::now() + STALL) {
            Ok(n) => {
                tally
                    .record(&buf[..n])
                    .unwrap_or_else(|e| panic!("delivered: {e}"));
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    other.finish(STALL).assert_success();
    let merged = merge_checked([&tally]);
    assert_eq!(
        *merged.stream(0),
        Stream::of(0, 0..3),
        "the half-written one is skipped"
    );
    assert_eq!(*merged.stream(1), Stream::of(1, 0..OTHERS));
    assert_eq!(
        consumer.counters(),
        Counters {
            skipped: 1,
            lost: 0
        }
    );
    assert_eq!(holder.finish(STALL).status.signal(), Some(libc::SIGKILL));
}

/// Issue 8, section 3: a consumer killed (`kill -9`) after claiming a
/// message and before releasing it stalls producers only while it lives
/// (once they come round to its slot); then the message is counted lost,
/// not redelivered, and every other message arrives once.
#[test]
fn a_consumer_killed_between_claim_and_release_loses_that_message_only() {
    const COUNT: u64 = 1000;
    const CAPACITY: u64 = 16;
    let name = ShmName::new("mpmc-dead-reader");
    let region = shm_queue(&name, CAPACITY);
    let mut producer = Producer::attach(region).unwrap();
    let mut holder = peer(&["hold-read", &name]);
    send_tagged(&mut producer, 0, 0).unwrap();
    assert_eq!(holder.read_line(STALL), "holding 0 0");
    let other = consumer_peer(&name, 1, 0);
    for seq in 1..CAPACITY {
        send_tagged(&mut producer, 0, seq).unwrap();
    }
    // A lap on, the held slot is next: full while its reader lives.
    let mut msg = [0u8; TAGGED_LEN];
    tagged::fill(0, CAPACITY, &mut msg);
    let outcome = producer.send_timeout(&msg, Duration::from_millis(200));
    assert_eq!(outcome, Err(SendError::Timeout));
    assert_eq!(producer.counters(), Counters::default());

    kill(holder.pid(), Signal::SIGKILL).unwrap();
    holder.wait_ended(STALL);
    for seq in CAPACITY..COUNT {
        send_tagged(&mut producer, 0, seq).unwrap_or_else(|e| panic!("message {seq}: {e}"));
    }
    assert_eq!(
        producer.counters(),
        Counters {
            skipped: 0,
            lost: 1
        }
    );
    drop(producer);
    let tally = tally_of(&other.finish(STALL));
    assert_eq!(
        *merge_checked([&tally]).stream(0),
        Stream::of(0, 1..COUNT),
        "message 0 is lost"
    );
    assert_eq!(holder.finish(STALL).status.signal(), Some(libc::SIGKILL));
}

/// Issue 13, item 3: a consumer waiting behind another consumer's held
/// `ReadGuard` (the slot at the head still `READING` on the previous lap)
/// sleeps, with `Park` and with `SpinThenPark`: its wait condition must
/// not call ready what `try_recv` calls empty. Counted in wait syscalls
/// (a liveness tick every 20 ms costs a couple), not timed.
#[test]
fn a_consumer_waiting_behind_a_held_read_guard_sleeps() {
    let name = ShmName::new("mpmc-behind-guard");
    let region = shm_queue(&name, 2);
    let mut producer = Producer::attach(region.clone()).unwrap();
    let mut holder = Consumer::attach(region.clone()).unwrap();
    let mut other = Consumer::attach(region).unwrap();
    send_tagged(&mut producer, 0, 0).unwrap();
    send_tagged(&mut producer, 0, 1).unwrap();
    let held = holder.try_recv().unwrap(); // slot 0, lap 0
    drop(other.try_recv().unwrap()); // slot 1: the head is now slot 0, lap 1
    for strategy in ["park", "spin-then-park"] {
        let done = peer(&["wait-recv", &name, strategy, "300"]).finish(STALL);
        done.assert_success();
        let line = done.stdout.lines().last().unwrap_or_default();
        let made = number_after(line, "Timeout syscalls ");
        eprintln!("{strategy}: {made} wait syscalls in 300 ms");
        assert!(made < 100, "{strategy}: {made} wait syscalls in 300 ms");
    }
    assert_eq!(tagged::read(&held).unwrap().seq, 0);
}

/// Issue 13, item 2, with real deaths: a consumer reaping a dead producer
/// is killed (`SIGKILL`) at a random moment of its reap, round after
/// round. The dead producer's half-written slot is the last of a 2^20-slot
/// queue, so a reaper killed during its scan has claimed the entry and not
/// yet repaired the slot. Another consumer must take the reap over and
/// receive what is sent next; before the fix some rounds stayed wedged
/// (the entry `REAPING` for good, the receive timing out).
#[test]
fn a_reaper_killed_at_a_random_moment_of_its_reap_wedges_nothing() {
    const CAPACITY: u64 = 1 << 20;
    const ROUNDS: u64 = 30;
    let mut wedged = Vec::new();
    let mut buf = [0u8; TAGGED_LEN];
    for round in 0..ROUNDS {
        let name = ShmName::new("mpmc-dead-reaper");
        let region = shm_queue(&name, CAPACITY);
        let mut producer = Producer::attach(region.clone()).unwrap();
        let mut consumer = Consumer::attach(region).unwrap();
        for _ in 0..CAPACITY - 1 {
            producer.try_send(&buf).unwrap();
            consumer.try_recv_into(&mut buf).unwrap();
        }
        let mut holder = peer(&["hold-grant", &name, "1", "0"]);
        assert_eq!(holder.read_line(STALL), "holding 0");
        kill(holder.pid(), Signal::SIGKILL).unwrap();
        holder.wait_ended(STALL);
        send_tagged(&mut producer, 0, 0).unwrap();
        let mut reaper = peer(&["wait-recv", &name, "busy-poll", "60000"]);
        assert_eq!(reaper.read_line(STALL), "waiting");
        // It reaps after a millisecond stuck, for some milliseconds.
        std::thread::sleep(Duration::from_micros(mix(round) % 15_000));
        kill(reaper.pid(), Signal::SIGKILL).unwrap();
        reaper.wait_ended(STALL);
        // Message 0 is received here unless the reaper got it first;
        // message 1 is, in any case.
        send_tagged(&mut producer, 0, 1).unwrap();
        loop {
            match consumer.recv_timeout(Duration::from_secs(5)) {
                Ok(msg) if tagged::read(&msg).unwrap().seq == 1 => break,
                Ok(_) => {}
                Err(e) => {
                    wedged.push((round, e));
                    break;
                }
            }
        }
    }
    assert!(wedged.is_empty(), "wedged rounds: {wedged:?}");
}

/// What a scribbler did to a queue's users: calls that returned a message,
/// `Corrupted`, `Disconnected`; the slowest round of calls.
#[derive(Debug)]
struct Scribbled {
    received: u64,
    corrupted: u64,
    disconnected: u64,
    slowest: Duration,
}

/// The SPSC tests' hostile scribbler, pointed at a live queue: a forked
/// process stores random and plausible values (positions, stamps naming
/// live, free and absent participants, lengths) over the control block and
/// the slots, and over the participant table too if `with_table`, for 1.5 s,
/// while two producers and two consumers of this process use every call.
/// Each call must return a message no longer than the maximum, or an error.
fn scribble_over_a_live_queue(with_table: bool) -> Scribbled {
    const MAX: usize = 64;
    let region = Arc::new(options(64).create_anonymous().unwrap());
    // Attached before the scribbler starts.
    let (mut p1, mut c1) = mpmc::channel(region.clone()).unwrap();
    let (mut p2, mut c2) = (p1.try_clone().unwrap(), c1.try_clone().unwrap());
    // The table lies between the header and the data area.
    let table = region.layout().data_offset - HEADER_SIZE;
    let (start, words) = match with_table {
        true => (table, (table + region.data_len()) / 8),
        false => (0, region.data_len() / 8),
    };
    let scribble = || {
        let started = Instant::now();
        let seed = u64::from(std::process::id()) << 32;
        for n in 0.. {
            if started.elapsed() > Duration::from_millis(1500) {
                break;
            }
            let x = mix(seed + n);
            let offset = (x % words) * 8;
            let value = match x >> 60 {
                0..=4 => x.rotate_left(23),
                5..=8 => x % 512, // small positions and lengths
                // A stamp (or a table entry): lap (generation) 0 to 7, state
                // 0 to 7, holder 0 to 7 (1 to 4 are live, 5 to 7 name free
                // table slots).
                _ => ((x >> 8) % 8) << 19 | ((x >> 16) % 8) << 16 | ((x >> 24) % 8),
            };
            // SAFETY: `start` bytes before the data area is the start of the
            // table, inside the mapping, and `offset` is 8-aligned and below
            // the end of the data area; an atomic store may race with the
            // queue's accesses.
            let word = unsafe {
                let first = region.data_ptr().as_ptr().sub(start as usize);
                &*(first.add(offset as usize) as *const AtomicU64)
            };
            word.store(value, Ordering::Relaxed);
            std::hint::spin_loop();
        }
        0
    };
    // SAFETY: the child only stores into atomics of the shared mapping: no
    // allocation, no locks.
    let child = unsafe { ForkedChild::fork(scribble) }.unwrap();
    let mut seen = Scribbled {
        received: 0,
        corrupted: 0,
        disconnected: 0,
        slowest: Duration::ZERO,
    };
    let mut buf = [0u8; MAX];
    let short = Duration::from_millis(1);
    let sent = |r: Result<(), SendError>, seen: &mut Scribbled| match r {
        Ok(()) | Err(SendError::Full | SendError::Timeout) => {}
        Err(SendError::Corrupted(_)) => seen.corrupted += 1,
        Err(SendError::Disconnected) => seen.disconnected += 1,
        Err(e) => panic!("{e}"),
    };
    let got = |r: Result<usize, RecvError>, seen: &mut Scribbled| match r {
        Ok(len) => {
            assert!(len <= MAX);
            seen.received += 1;
        }
        Err(RecvError::Empty | RecvError::Timeout) => {}
        Err(RecvError::Corrupted(_)) => seen.corrupted += 1,
        Err(RecvError::Disconnected) => seen.disconnected += 1,
        Err(e) => panic!("{e}"),
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let round = Instant::now();
        for (i, len) in [0usize, 7, 40, MAX].into_iter().enumerate() {
            let producer = if i % 2 == 0 { &mut p1 } else { &mut p2 };
            sent(producer.try_send(&buf[..len]), &mut seen);
        }
        sent(p1.send_timeout(&buf[..8], short), &mut seen);
        sent(p2.try_reserve(16).and_then(|g| g.commit()), &mut seen);
        got(c1.try_recv().map(|m| m.len()), &mut seen);
        got(c2.recv_timeout(short).map(|m| m.len()), &mut seen);
        got(c1.try_recv_into(&mut buf), &mut seen);
        let deadline = Instant::now() + short;
        got(c2.recv_into_deadline(&mut buf, deadline), &mut seen);
        seen.slowest = seen.slowest.max(round.elapsed());
    }
    let status = child.wait(STALL).unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    eprintln!("{seen:?}");
    assert!(seen.slowest < Duration::from_secs(5), "{seen:?}");
    // The scribbler must really have hit the queue for this to mean anything.
    assert!(
        seen.corrupted > 0,
        "no corruption was ever detected: {seen:?}"
    );
    seen
}

/// The scribbler over the queue's own memory: errors, never a crash, a
/// hang, or a message over the maximum; and never `Disconnected`, which the
/// queue's memory does not decide (the participant table does).
#[test]
fn a_hostile_process_scribbling_over_a_live_queue_causes_errors_not_crashes() {
    let seen = scribble_over_a_live_queue(false);
    assert_eq!(seen.disconnected, 0, "{seen:?}");
}

/// The scribbler over the participant table as well: it may fake a
/// disconnection (documented), and still never crash or hang anyone.
#[test]
fn a_hostile_process_scribbling_over_the_participant_table_too_causes_errors_not_crashes() {
    scribble_over_a_live_queue(true);
}
