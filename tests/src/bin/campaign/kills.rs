//! Random `SIGKILL`s: forked producers and consumers of one channel run
//! while this process kills one of them at a random moment (a timer, not a
//! test hook), again and again, starting a replacement each time; then the
//! round stops, drains, and every message is accounted for.
//!
//! Bookkeeping lives in a second shared region (a raw one), written by the
//! children with atomics: per producer stream the message being sent
//! (`attempt`) and the count sent (`done`); per message a receive counter,
//! bumped by the consumer *after* the library has released the message (so
//! a redelivery would show as a count of 2, and a consumer killed between
//! release and bump loses exactly that one message, the "in flight" one).
//!
//! Each round checks:
//! - no message received twice, none corrupt or forged (tagged messages
//!   carry producer, sequence and checksum; typed ones rebuild themselves);
//! - every message a producer's send returned `Ok` for arrived, except at
//!   most one per killed consumer (its in-flight one, which the MPMC queue
//!   counts in `lost` when the consumer died holding it); the message a
//!   killed producer was sending may or may not arrive;
//! - the MPMC counters agree: `lost` ≤ killed consumers, `skipped` ≤ killed
//!   producers;
//! - every survivor (and the replacements) finish within a deadline: a hung
//!   one is a failure, reported with the queue's participant table.
//!
//! This part forks: it runs first, while the campaign has a single thread,
//! so the children may allocate and print.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::channel::{
    Bytes, Channel, Endpoint, Receiver, RecvError, SendFailure, Sender, Serde,
};
use ipc_core::wait::WaitStrategy;
use ipc_core::{mpmc, Region, RegionOptions};
use ipc_tests::fork::ForkedChild;
use ipc_tests::tagged::{self, TAGGED_LEN};
use ipc_tests::typed::Record;
use ipc_tests::wait::describe;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;

use crate::report::Report;
use crate::rng::Rng;
use crate::Scale;

/// Messages per producer stream at most, in a round.
const CAP: u64 = 1 << 18;
/// Producer streams at most.
const STREAMS: u64 = 3;
/// How long a survivor may take to finish once told to (generous: two
/// shared cores).
const FINISH: Duration = Duration::from_secs(20);
/// How long a blocking call waits before looking at the stop flag: longer
/// than the liveness tick ([`ipc_core::wait::LIVENESS_TICK`]), on which a
/// waiting call reaps dead peers (a shorter wait never reaches it).
const CALL: Duration = Duration::from_millis(60);
/// After the producers finished, every consumer drains with blocking calls
/// this long: `try_recv` reaps no dead producer (only a waiting call does,
/// or a call stuck on a dead holder's slot), so a try call alone may never
/// see `Disconnected`.
const DRAIN_CALL: Duration = Duration::from_millis(200);

// Word offsets in the bookkeeping region.
const STOP: u64 = 0;
const FINISHED: u64 = 8;
const CORRUPT: u64 = 16;
const ERRORS: u64 = 24;
const NOTE_LOCK: u64 = 32;
const NOTE: u64 = 256;
const NOTE_LEN: usize = 768;
const STREAM_WORDS: u64 = 1024;
const COUNTERS: u64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    SpscBytes,
    MpmcBytes,
    SpscSerde,
    MpmcSerde,
}

impl Kind {
    fn is_mpmc(self) -> bool {
        matches!(self, Kind::MpmcBytes | Kind::MpmcSerde)
    }
}

/// How a child calls: try calls in a loop, blocking calls with a timeout,
/// or (receivers) the copying `recv_into`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Calls {
    Try,
    Blocking,
    Copying,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Producer { stream: u64 },
    Consumer,
}

enum Ep {
    Bytes(Endpoint<[u8], Bytes>),
    Serde(Endpoint<Record, Serde>),
}

impl Ep {
    fn region(&self) -> &Arc<Region> {
        match self {
            Ep::Bytes(e) => e.region(),
            Ep::Serde(e) => e.region(),
        }
    }
}

enum Tx {
    Bytes(Sender<[u8], Bytes>),
    Serde(Sender<Record, Serde>),
}

enum Rx {
    Bytes(Receiver<[u8], Bytes>),
    Serde(Receiver<Record, Serde>),
}

/// The shared bookkeeping.
struct Book {
    region: Region,
}

impl Book {
    fn new() -> Book {
        let size = COUNTERS + 2 * STREAMS * CAP;
        let region = RegionOptions::new()
            .size(size)
            .create_anonymous()
            .expect("the bookkeeping region");
        Book { region }
    }

    fn word(&self, offset: u64) -> &AtomicU64 {
        self.region.atomic_u64(offset).expect("a bookkeeping word")
    }

    fn attempt(&self, stream: u64) -> &AtomicU64 {
        self.word(STREAM_WORDS + stream * 16)
    }

    fn done(&self, stream: u64) -> &AtomicU64 {
        self.word(STREAM_WORDS + stream * 16 + 8)
    }

    /// Counts a receipt of message `seq` of `stream`: one byte each.
    fn received(&self, stream: u64, seq: u64) {
        let byte = COUNTERS + stream * CAP + seq;
        self.word(byte & !7)
            .fetch_add(1 << ((byte % 8) * 8), Ordering::Relaxed);
    }

    fn receipts(&self, stream: u64, seq: u64) -> u64 {
        let byte = COUNTERS + stream * CAP + seq;
        (self.word(byte & !7).load(Ordering::Relaxed) >> ((byte % 8) * 8)) & 0xff
    }

    /// Notes that message `seq` of `stream` is being sent again after its
    /// send failed with `why` (1 full, 2 timeout, 3 disconnected), which
    /// the library promises means "not sent": a duplicate of it would show
    /// a send that failed yet delivered.
    fn retried(&self, stream: u64, seq: u64, why: u64) {
        let byte = COUNTERS + STREAMS * CAP + stream * CAP + seq;
        let shift = (byte % 8) * 8;
        self.word(byte & !7)
            .fetch_or(why << shift, Ordering::Relaxed);
    }

    fn retries(&self, stream: u64, seq: u64) -> u64 {
        let byte = COUNTERS + STREAMS * CAP + stream * CAP + seq;
        (self.word(byte & !7).load(Ordering::Relaxed) >> ((byte % 8) * 8)) & 0xff
    }

    fn stop(&self) -> bool {
        self.word(STOP).load(Ordering::Relaxed) != 0
    }

    fn finished(&self) -> bool {
        self.word(FINISHED).load(Ordering::Relaxed) != 0
    }

    /// Clears everything a round uses (before it forks anyone).
    fn reset(&self, streams: u64) {
        for offset in (0..COUNTERS).step_by(8) {
            self.word(offset).store(0, Ordering::Relaxed);
        }
        for area in [COUNTERS, COUNTERS + STREAMS * CAP] {
            for offset in (area..area + streams * CAP).step_by(8) {
                self.word(offset).store(0, Ordering::Relaxed);
            }
        }
    }

    /// Keeps the first note a child leaves (what went wrong, in words).
    fn note(&self, text: &str) {
        if self
            .word(NOTE_LOCK)
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let mut bytes = [0u8; NOTE_LEN];
            let n = text.len().min(NOTE_LEN - 1);
            bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
            let _ = self.region.write_at(NOTE, &bytes);
        }
    }

    fn read_note(&self) -> Option<String> {
        if self.word(NOTE_LOCK).load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut bytes = [0u8; NOTE_LEN];
        self.region.read_at(NOTE, &mut bytes).ok()?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(NOTE_LEN);
        Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
    }
}

/// One round's choices, all from its seed.
#[derive(Clone, Debug)]
struct Round {
    index: u64,
    seed: u64,
    kind: Kind,
    capacity: u64,
    strategy: WaitStrategy,
    producers: u64,
    consumers: u64,
    kills: u64,
    /// Longest gap between kills, in microseconds.
    gap_us: u64,
}

impl Round {
    fn new(seed: u64, index: u64) -> Round {
        let mut rng = Rng::derive(seed, 1, index);
        let kind = *rng.pick(&[
            Kind::SpscBytes,
            Kind::MpmcBytes,
            Kind::SpscSerde,
            Kind::MpmcSerde,
        ]);
        let (producers, consumers) = if kind.is_mpmc() {
            (rng.range(1, STREAMS), rng.range(1, 3))
        } else {
            (1, 1)
        };
        Round {
            index,
            seed,
            kind,
            // A large MPMC queue makes a reap's scan of the slots long
            // enough for a kill to land in it (a reaper dying mid-reap).
            capacity: if kind.is_mpmc() && rng.one_in(4) {
                1 << 18
            } else {
                *rng.pick(&[2, 4, 16, 64, 1024])
            },
            strategy: *rng.pick(&[
                WaitStrategy::default(),
                WaitStrategy::Park,
                WaitStrategy::BusyPoll,
            ]),
            producers,
            consumers,
            kills: rng.range(6, 14),
            gap_us: *rng.pick(&[300, 2_000, 10_000, 30_000]),
        }
    }

    fn describe(&self) -> String {
        format!(
            "kills round {} (seed {}; replay: --only kills --seed {} --round {}): {:?}, capacity {}, {:?}, {} producer(s), {} consumer(s)",
            self.index,
            self.seed,
            self.seed,
            self.index,
            self.kind,
            self.capacity,
            self.strategy,
            self.producers,
            self.consumers
        )
    }
}

struct Child {
    process: ForkedChild,
    role: Role,
    calls: Calls,
}

/// What a round saw, added to the report.
#[derive(Debug, Default)]
struct Tallies {
    kills_producer: u64,
    kills_consumer: u64,
    sent: u64,
    delivered: u64,
    in_flight_missing: u64,
    maybe_sent: u64,
    maybe_delivered: u64,
    skipped: u64,
    lost: u64,
}

pub fn run(seed: u64, scale: Scale, only: Option<u64>, report: &mut Report) {
    let started = Instant::now();
    let rounds = scale.of(150);
    let book = Book::new();
    let indices = match only {
        Some(round) => round..round + 1,
        None => 0..rounds,
    };
    let rounds = indices.end - indices.start;
    for index in indices {
        let round = Round::new(seed, index);
        run_round(&round, &book, report);
    }
    report.add("kills: rounds", rounds);
    report.timed("kills", started.elapsed());
}

fn endpoint(round: &Round) -> Ep {
    let made = match round.kind {
        Kind::SpscBytes | Kind::MpmcBytes => {
            let builder = Channel::bytes()
                .capacity(round.capacity)
                .max_message(TAGGED_LEN as u64)
                .wait_strategy(round.strategy);
            let builder = if round.kind.is_mpmc() {
                builder.mpmc()
            } else {
                builder.spsc()
            };
            builder.anonymous().map(Ep::Bytes)
        }
        Kind::SpscSerde | Kind::MpmcSerde => {
            let builder = Channel::serde::<Record>()
                .capacity(round.capacity)
                .max_message(256)
                .wait_strategy(round.strategy);
            let builder = if round.kind.is_mpmc() {
                builder.mpmc()
            } else {
                builder.spsc()
            };
            builder.anonymous().map(Ep::Serde)
        }
    };
    made.expect("a round's channel")
}

fn run_round(round: &Round, book: &Book, report: &mut Report) {
    let mut rng = Rng::derive(round.seed, 2, round.index);
    book.reset(round.producers);
    let ep = endpoint(round);
    // An MPMC queue's gates: attached all round, so that no child sees
    // `Disconnected` while another is being replaced; the producer gate
    // also reads the counters at the end.
    let mut gates = if round.kind.is_mpmc() {
        Some((
            mpmc::Producer::attach(ep.region().clone()).expect("the producer gate"),
            mpmc::Consumer::attach(ep.region().clone()).expect("the consumer gate"),
        ))
    } else {
        None
    };
    let mut children = Vec::new();
    let mut tallies = Tallies::default();
    let mut maybe: Vec<Vec<u64>> = vec![Vec::new(); round.producers as usize];
    // Where each stream's next producer starts: never below a message that
    // may have been sent already (a replacement killed before its first
    // send leaves `done` behind it).
    let mut resume = vec![0u64; round.producers as usize];
    for stream in 0..round.producers {
        let calls = *rng.pick(&[Calls::Try, Calls::Blocking]);
        children.push(spawn(&ep, book, Role::Producer { stream }, calls, 0));
    }
    for _ in 0..round.consumers {
        let calls = *rng.pick(&[Calls::Try, Calls::Blocking, Calls::Copying]);
        children.push(spawn(&ep, book, Role::Consumer, calls, 0));
    }
    let mut failed = false;
    // What happened, for a failure's detail.
    let started = Instant::now();
    let mut log: Vec<String> = children
        .iter()
        .map(|c| format!("start {:?} {:?}", c.role, c.calls))
        .collect();
    // The kill phase.
    for _ in 0..round.kills {
        std::thread::sleep(Duration::from_micros(rng.below(round.gap_us + 1)));
        let running: Vec<usize> = (0..children.len())
            .filter(|&i| matches!(children[i].process.try_wait(), Ok(None)))
            .collect();
        if running.is_empty() {
            break;
        }
        let victim = running[rng.below(running.len() as u64) as usize];
        let _ = kill(children[victim].process.pid(), Signal::SIGKILL);
        let status = children[victim].process.wait(FINISH);
        let role = children[victim].role;
        match status {
            Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _)) => {}
            other => {
                // It ended on its own before the signal: judged as a survivor.
                failed |= judge_exit(round, &ep, book, &children[victim], other, report);
                continue;
            }
        }
        log.push(format!(
            "{:.1} ms: killed {:?} {:?}",
            started.elapsed().as_secs_f64() * 1e3,
            role,
            children[victim].calls
        ));
        let calls = *rng.pick(&[Calls::Try, Calls::Blocking, Calls::Copying]);
        match role {
            Role::Producer { stream } => {
                tallies.kills_producer += 1;
                let attempt = book.attempt(stream).swap(0, Ordering::Relaxed);
                let done = book.done(stream).load(Ordering::Relaxed);
                let mut next = resume[stream as usize].max(done);
                if attempt != 0 {
                    // Killed while sending `attempt - 1`: it may or may not
                    // be delivered, never twice; the stream goes on after it.
                    maybe[stream as usize].push(attempt - 1);
                    next = next.max(attempt);
                }
                resume[stream as usize] = next;
                let calls = if calls == Calls::Copying {
                    Calls::Try
                } else {
                    calls
                };
                children[victim] = spawn(&ep, book, role, calls, next);
                log.push(format!(
                    "  (done {done}, attempt {attempt}) replaced by {calls:?} from seq {next}"
                ));
            }
            Role::Consumer => {
                tallies.kills_consumer += 1;
                children[victim] = spawn(&ep, book, role, calls, 0);
                log.push(format!("  replaced by {calls:?}"));
            }
        }
    }
    // Stop the producers, then let the consumers drain.
    book.word(STOP).store(1, Ordering::Relaxed);
    for child in children.iter().filter(|c| c.role != Role::Consumer) {
        let status = child.process.wait(FINISH);
        failed |= judge_exit(round, &ep, book, child, status, report);
    }
    let counters = gates.as_ref().map(|(p, _)| p.counters());
    book.word(FINISHED).store(1, Ordering::Relaxed);
    let participants = format!("{:?}", ep.region().participants());
    gates = None;
    drop(gates);
    // After one consumer hangs the others are behind the same wedge: a
    // short wait for them keeps a failing round from taking minutes.
    let mut finish = FINISH;
    for child in children.iter().filter(|c| c.role == Role::Consumer) {
        let status = child.process.wait(finish);
        if status.is_err() {
            let waited = std::mem::replace(&mut finish, Duration::from_secs(1));
            report.fail(
                "hang: consumer did not finish (queue wedged?)",
                format!(
                    "{}: a {:?} consumer (pid {}) still running {waited:?} after the \
                     producers finished (the first one waited for {FINISH:?}); \
                     participants then: {participants}",
                    round.describe(),
                    child.calls,
                    child.process.pid()
                ),
            );
            failed = true;
            continue;
        }
        failed |= judge_exit(round, &ep, book, child, status, report);
    }
    drop(children);
    let corrupt = book.word(CORRUPT).load(Ordering::Relaxed);
    if corrupt > 0 {
        report.fail(
            "corrupt or forged message delivered",
            format!(
                "{}: {corrupt} message(s); first: {}",
                round.describe(),
                book.read_note().unwrap_or_default()
            ),
        );
        failed = true;
    }
    // Account for every message.
    let mut missing = Vec::new();
    let mut duplicates = Vec::new();
    let mut phantoms = Vec::new();
    for stream in 0..round.producers {
        let done = book.done(stream).load(Ordering::Relaxed);
        let maybe = &maybe[stream as usize];
        for seq in 0..CAP {
            let n = book.receipts(stream, seq);
            let optional = maybe.contains(&seq);
            if n > 1 {
                let after = match book.retries(stream, seq) {
                    0 => "sent once".to_string(),
                    r => format!(
                        "resent after its send returned{}{}{}",
                        if r & 1 != 0 { " Full" } else { "" },
                        if r & 2 != 0 { " Timeout" } else { "" },
                        if r & 4 != 0 { " Disconnected" } else { "" }
                    ),
                };
                duplicates.push((stream, seq, n, after));
            }
            if optional {
                tallies.maybe_sent += 1;
                tallies.maybe_delivered += n.min(1);
            } else if seq < done {
                tallies.sent += 1;
                if n == 0 {
                    missing.push((stream, seq));
                } else {
                    tallies.delivered += 1;
                }
            } else if n > 0 {
                phantoms.push((stream, seq, n));
            }
        }
    }
    if let Some(c) = counters {
        tallies.skipped = c.skipped;
        tallies.lost = c.lost;
        if c.lost > tallies.kills_consumer || c.skipped > tallies.kills_producer {
            report.fail(
                "counters exceed the kills",
                format!(
                    "{}: {c:?} after {} producer and {} consumer kills",
                    round.describe(),
                    tallies.kills_producer,
                    tallies.kills_consumer
                ),
            );
            failed = true;
        }
    }
    tallies.in_flight_missing = missing.len() as u64;
    if !duplicates.is_empty() {
        report.fail(
            "duplicate delivery",
            format!(
                "{}: {} message(s) delivered more than once; first (stream, seq, times, how it was sent): {:?}\n    kills: {}",
                round.describe(),
                duplicates.len(),
                &duplicates[..duplicates.len().min(5)],
                log.join("; ")
            ),
        );
        failed = true;
    }
    if !phantoms.is_empty() {
        report.fail(
            "message never sent was delivered",
            format!(
                "{}: first (stream, seq, times): {:?}",
                round.describe(),
                &phantoms[..phantoms.len().min(5)]
            ),
        );
        failed = true;
    }
    if missing.len() as u64 > tallies.kills_consumer {
        report.fail(
            "lost beyond the counters and in-flight allowance",
            format!(
                "{}: {} sent message(s) never delivered, {} consumer kill(s) (lost counter {}); \
                 first (stream, seq): {:?}",
                round.describe(),
                missing.len(),
                tallies.kills_consumer,
                tallies.lost,
                &missing[..missing.len().min(5)]
            ),
        );
        failed = true;
    }
    report.add(
        "kills: SIGKILLs (total)",
        tallies.kills_producer + tallies.kills_consumer,
    );
    report.add("kills: SIGKILLs of producers", tallies.kills_producer);
    report.add("kills: SIGKILLs of consumers", tallies.kills_consumer);
    report.add(&format!("kills: rounds {:?}", round.kind), 1);
    report.add("kills: messages sent (send returned Ok)", tallies.sent);
    report.add("kills: messages delivered once", tallies.delivered);
    report.add(
        "kills: sent, never delivered (in flight at a consumer kill)",
        tallies.in_flight_missing,
    );
    report.add(
        "kills: messages being sent at a producer kill",
        tallies.maybe_sent,
    );
    report.add("kills:   of which delivered", tallies.maybe_delivered);
    report.add("kills: MPMC counters: skipped", tallies.skipped);
    report.add("kills: MPMC counters: lost", tallies.lost);
    if failed {
        report.add("kills: rounds failed", 1);
    }
}

/// Checks how a child that was not killed ended; true if that is a failure.
fn judge_exit(
    round: &Round,
    ep: &Ep,
    book: &Book,
    child: &Child,
    status: Result<WaitStatus, ipc_tests::wait::WaitError>,
    report: &mut Report,
) -> bool {
    let what = match child.role {
        Role::Producer { stream } => format!("producer of stream {stream}"),
        Role::Consumer => "consumer".to_string(),
    };
    match status {
        Ok(WaitStatus::Exited(_, 0)) => false,
        Ok(WaitStatus::Exited(_, code)) => {
            report.fail(
                "survivor failed (typed error it should not get)",
                format!(
                    "{}: {what} ({:?} calls) exited {code}: {}",
                    round.describe(),
                    child.calls,
                    book.read_note().unwrap_or_default()
                ),
            );
            true
        }
        Ok(other) => {
            report.fail(
                "survivor crashed",
                format!(
                    "{}: {what} ({:?} calls): {}",
                    round.describe(),
                    child.calls,
                    describe(&other)
                ),
            );
            true
        }
        Err(e) => {
            report.fail(
                &format!(
                    "hang: {} did not finish",
                    what.split(' ').next().unwrap_or("")
                ),
                format!(
                    "{}: {what} ({:?} calls, pid {}): {e}; participants: {:?}",
                    round.describe(),
                    child.calls,
                    child.process.pid(),
                    ep.region().participants()
                ),
            );
            true
        }
    }
}

fn spawn(ep: &Ep, book: &Book, role: Role, calls: Calls, start: u64) -> Child {
    let work = || match role {
        Role::Producer { stream } => produce(ep, book, stream, calls, start),
        Role::Consumer => consume(ep, book, calls),
    };
    // SAFETY: this process has a single thread (this part runs before any
    // other starts one), so the child may do anything; it leaves with
    // `_exit`.
    let process = unsafe { ForkedChild::fork(work) }.expect("fork");
    Child {
        process,
        role,
        calls,
    }
}

fn fail(book: &Book, text: String) -> i32 {
    book.word(ERRORS).fetch_add(1, Ordering::Relaxed);
    book.note(&text);
    3
}

fn produce(ep: &Ep, book: &Book, stream: u64, calls: Calls, start: u64) -> i32 {
    // A dead SPSC producer is taken over once found dead: retry a while.
    let attached = Instant::now();
    let mut tx = loop {
        let made = match ep {
            Ep::Bytes(e) => e.sender().map(Tx::Bytes),
            Ep::Serde(e) => e.sender().map(Tx::Serde),
        };
        match made {
            Ok(tx) => break tx,
            Err(e) if attached.elapsed() < FINISH => {
                if book.stop() {
                    return 0;
                }
                let _ = e;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return fail(book, format!("producer {stream}: attach: {e}")),
        }
    };
    let mut msg = [0u8; TAGGED_LEN];
    for seq in start..CAP {
        if book.stop() {
            break;
        }
        book.attempt(stream).store(seq + 1, Ordering::Relaxed);
        loop {
            let sent = match &mut tx {
                Tx::Bytes(tx) => {
                    tagged::fill(stream as usize, seq, &mut msg);
                    match calls {
                        Calls::Blocking => tx.send_timeout(&msg, CALL),
                        _ => tx.try_send(&msg),
                    }
                }
                Tx::Serde(tx) => {
                    let record = Record::new(stream as u32, seq);
                    match calls {
                        Calls::Blocking => tx.send_timeout(record, CALL),
                        _ => tx.try_send(record),
                    }
                    .map_err(|e| e.failure)
                }
            };
            match sent {
                Ok(()) => break,
                Err(e @ (SendFailure::Full | SendFailure::Timeout | SendFailure::Disconnected)) => {
                    let why = match e {
                        SendFailure::Full => 1,
                        SendFailure::Timeout => 2,
                        _ => 4,
                    };
                    book.retried(stream, seq, why);
                    if book.stop() {
                        book.attempt(stream).store(0, Ordering::Relaxed);
                        drop(tx);
                        return 0;
                    }
                    if calls == Calls::Try {
                        std::thread::yield_now();
                    }
                }
                Err(e) => return fail(book, format!("producer {stream} seq {seq}: {e}")),
            }
        }
        // Order: `done` first, then `attempt` cleared; the parent reads
        // both only after this process is dead or exited.
        book.done(stream).store(seq + 1, Ordering::Relaxed);
        book.attempt(stream).store(0, Ordering::Relaxed);
    }
    // A survivor leaves cleanly (the killed ones do not).
    drop(tx);
    0
}

fn consume(ep: &Ep, book: &Book, calls: Calls) -> i32 {
    let mut rx = match ep {
        Ep::Bytes(e) => e.receiver().map(Rx::Bytes),
        Ep::Serde(e) => e.receiver().map(Rx::Serde),
    };
    let attached = Instant::now();
    while rx.is_err() && attached.elapsed() < FINISH {
        std::thread::sleep(Duration::from_millis(1));
        rx = match ep {
            Ep::Bytes(e) => e.receiver().map(Rx::Bytes),
            Ep::Serde(e) => e.receiver().map(Rx::Serde),
        };
    }
    let mut rx = match rx {
        Ok(rx) => rx,
        Err(e) => return fail(book, format!("consumer: attach: {e}")),
    };
    let mut buf = [0u8; 256];
    loop {
        let calls = if book.finished() && calls == Calls::Try {
            Calls::Blocking
        } else {
            calls
        };
        let wait = if book.finished() { DRAIN_CALL } else { CALL };
        // Copy the message out (releasing it) before judging and counting it.
        let got: Result<Result<(u64, u64), String>, RecvError> = match &mut rx {
            Rx::Bytes(rx) => {
                let len = match calls {
                    Calls::Try => rx.try_recv().map(|m| copy(&m, &mut buf)),
                    Calls::Blocking => rx.recv_timeout(wait).map(|m| copy(&m, &mut buf)),
                    Calls::Copying => rx.recv_into_timeout(&mut buf, wait),
                };
                len.map(|len| match tagged::read(&buf[..len]) {
                    Ok(tag) => Ok((tag.producer as u64, tag.seq)),
                    Err(e) => Err(format!("{e}")),
                })
            }
            Rx::Serde(rx) => {
                let record = match calls {
                    Calls::Try => rx.try_recv(),
                    _ => rx.recv_timeout(wait),
                };
                record.map(|r| {
                    if r.is_intact() {
                        Ok((u64::from(r.producer), r.seq))
                    } else {
                        Err(format!("record not intact: {r:?}"))
                    }
                })
            }
        };
        match got {
            Ok(Ok((stream, seq))) if stream < STREAMS && seq < CAP => book.received(stream, seq),
            Ok(Ok((stream, seq))) => {
                book.word(CORRUPT).fetch_add(1, Ordering::Relaxed);
                book.note(&format!("out of range: stream {stream} seq {seq}"));
            }
            Ok(Err(why)) => {
                book.word(CORRUPT).fetch_add(1, Ordering::Relaxed);
                book.note(&why);
            }
            Err(RecvError::Empty | RecvError::Timeout) => {
                if calls == Calls::Try {
                    std::thread::yield_now();
                }
            }
            Err(RecvError::Disconnected) => {
                if book.finished() {
                    // A survivor leaves cleanly (the killed ones do not).
                    drop(rx);
                    return 0;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e @ RecvError::Decode { .. }) => {
                book.word(CORRUPT).fetch_add(1, Ordering::Relaxed);
                book.note(&format!("{e}"));
            }
            Err(e) => return fail(book, format!("consumer ({calls:?}): {e}")),
        }
    }
}

fn copy(msg: &[u8], buf: &mut [u8; 256]) -> usize {
    let n = msg.len().min(buf.len());
    buf[..n].copy_from_slice(&msg[..n]);
    n
}
