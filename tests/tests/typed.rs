//! Typed channels across real processes: serde records and plain-old-data
//! samples between unrelated programs (`typed-peer`, named channels) and
//! across `fork` (anonymous channels); the type check at open, decoding
//! errors and disconnection, each seen from the other process.
//!
//! Children forked by this (threaded) test process only move plain old data
//! and never allocate; the serde streams across `fork` run in `typed-peer`,
//! a single-threaded process whose children may do anything.

use std::sync::mpsc;
use std::time::Duration;

use ipc_core::channel::{Builder, Channel, Pod, RecvError, SendFailure, Serde};
use ipc_tests::fork::ForkedChild;
use ipc_tests::name::ShmName;
use ipc_tests::spawn::{Finished, SpawnedChild};
use ipc_tests::tagged::{Stream, Tally};
use ipc_tests::typed::{Record, Sample};
use ipc_tests::wait::BoundedWait;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;

const PEER: &str = env!("CARGO_BIN_EXE_typed-peer");
const MILLION: u64 = 1_000_000;
/// Longest any wait for a peer may last without progress before the test
/// fails (the peer's own limit is shorter, so it reports first).
const STALL: Duration = Duration::from_secs(60);
/// Longest a peer may run: a million records on a loaded 2-core machine
/// take seconds; this only keeps a broken test from hanging.
const RUN: Duration = Duration::from_secs(180);

/// The serde channel of the stream tests.
fn records(mpmc: bool) -> Builder<Record, Serde> {
    let builder = Channel::serde::<Record>().capacity(1024).max_message(256);
    if mpmc {
        builder.mpmc()
    } else {
        builder.spsc()
    }
}

/// The plain-old-data channel of the sample tests.
fn samples(mpmc: bool) -> Builder<Sample, Pod> {
    let builder = Channel::pod::<Sample>().capacity(256);
    if mpmc {
        builder.mpmc()
    } else {
        builder.spsc()
    }
}

fn start_peer(args: &[&str]) -> SpawnedChild {
    SpawnedChild::run(PEER, args)
}

/// Waits for a peer to end, checks that it succeeded: its stdout.
fn succeeded(peer: SpawnedChild) -> String {
    let done = peer.finish(RUN);
    done.assert_success();
    done.stdout
}

/// Fails the test with `what` and whatever the peer said on stderr
/// (killing it first if it still runs).
#[track_caller]
fn fail_with(peer: SpawnedChild, what: String) -> ! {
    let _ = kill(peer.pid(), Signal::SIGKILL);
    let done = peer.finish(STALL);
    panic!("{what}\n`{}` said: {}", done.command, done.stderr);
}

// ---------------------------------------------------------------------------
// A million serde records

#[test]
fn a_million_records_arrive_intact_and_in_order_from_an_unrelated_process() {
    let name = ShmName::new("typed-spsc");
    let endpoint = records(false).create(&name).unwrap();
    let mut rx = endpoint.receiver().unwrap();
    let peer = start_peer(&["produce", &name, "0", &MILLION.to_string()]);
    for seq in 0..MILLION {
        // A dead producer gives `Disconnected` here, a stalled one `Timeout`.
        let record = rx.recv_timeout(STALL);
        if record.as_ref() != Ok(&Record::new(0, seq)) {
            fail_with(peer, format!("record {seq}: got {record:?}"));
        }
    }
    succeeded(peer);
    assert_eq!(rx.recv_timeout(STALL), Err(RecvError::Disconnected));
}

#[test]
fn a_million_records_over_mpmc_reach_exactly_one_of_two_consumer_processes() {
    const PRODUCERS: u32 = 2;
    let per_producer = MILLION / u64::from(PRODUCERS);
    let name = ShmName::new("typed-mpmc");
    let endpoint = records(true).create(&name).unwrap();
    // Consumers stop when every producer is gone; this sender keeps the
    // role taken until both producer processes are done, however they are
    // scheduled.
    let keep_producing = endpoint.sender().unwrap();
    let consumers: Vec<SpawnedChild> = (0..2).map(|_| start_peer(&["consume", &name])).collect();
    let producers: Vec<SpawnedChild> = (0..PRODUCERS)
        .map(|p| start_peer(&["produce", &name, &p.to_string(), &per_producer.to_string()]))
        .collect();
    for producer in producers {
        succeeded(producer);
    }
    drop(keep_producing);

    let mut merged = Tally::default();
    for consumer in consumers {
        let said = succeeded(consumer);
        let tally = Tally::parse(said.trim()).unwrap_or_else(|e| panic!("a consumer: {e}"));
        merged.merge(&tally);
    }
    // Each record once, and each consumer got its share in order.
    for producer in 0..PRODUCERS as usize {
        let expected = Stream::of(producer, 0..per_producer);
        assert_eq!(*merged.stream(producer), expected, "producer {producer}");
    }
    assert_eq!(merged.total(), MILLION, "records from no producer");
}

#[test]
fn a_million_records_cross_fork_in_order() {
    let report = succeeded(start_peer(&["fork", "spsc", "1", &MILLION.to_string()]));
    assert_eq!(
        report,
        "received 1000000 records in order from 1 forked producers, then disconnected\n"
    );
}

#[test]
fn a_million_records_from_two_forked_producers_over_mpmc_arrive_once_in_order() {
    let per_producer = (MILLION / 2).to_string();
    let report = succeeded(start_peer(&["fork", "mpmc", "2", &per_producer]));
    assert_eq!(
        report,
        "received 1000000 records in order from 2 forked producers, then disconnected\n"
    );
}

// ---------------------------------------------------------------------------
// The type check at open

/// What `typed-peer open-as` said: its exit code and stdout.
fn open_as(name: &str, as_type: &str) -> (i32, String) {
    let Finished { status, stdout, .. } = start_peer(&["open-as", name, as_type]).finish(RUN);
    (status.code().unwrap_or(-1), stdout)
}

#[test]
fn opening_as_another_type_or_codec_fails_in_the_other_process_naming_both() {
    let record = std::any::type_name::<Record>();
    let sample = std::any::type_name::<Sample>();
    let (serde, pod) = ("serde with bincode 2.0.1", "plain old data");
    let record_name = ShmName::new("typed-records");
    let sample_name = ShmName::new("typed-samples");
    let _records = Channel::serde::<Record>().create(&record_name).unwrap();
    let _samples = Channel::pod::<Sample>().create(&sample_name).unwrap();

    // The right type and codec open: the peer can open at all.
    assert_eq!(
        open_as(&record_name, "serde-record"),
        (0, "opened\n".into())
    );
    assert_eq!(open_as(&sample_name, "pod-sample"), (0, "opened\n".into()));

    let mismatches = [
        // (channel, opened as, this side's words, the channel's words)
        (
            &record_name,
            "serde-sample",
            [sample, serde],
            [record, serde],
        ),
        (&record_name, "pod-sample", [sample, pod], [record, serde]),
        // The same type under the other codec is another type.
        (&sample_name, "serde-sample", [sample, serde], [sample, pod]),
    ];
    for (name, as_type, ours, theirs) in mismatches {
        let (code, report) = open_as(name, as_type);
        assert_eq!(code, 10, "opening {name} as {as_type}: {report}");
        let line = |label: &str| {
            report
                .lines()
                .find_map(|line| line.strip_prefix(label))
                .unwrap_or_else(|| panic!("no {label:?} in {report:?}"))
                .to_owned()
        };
        let (expected, found, error) = (line("expected: "), line("found: "), line("error: "));
        for word in ours {
            assert!(expected.contains(word), "{as_type}: {expected:?}");
        }
        for word in theirs {
            assert!(found.contains(word), "{as_type}: {found:?}");
        }
        // The message a user sees names both sides.
        assert!(
            error.contains(&expected) && error.contains(&found),
            "{error:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Bytes that do not decode

/// Messages no `Record` encodes to (bincode 2, standard configuration:
/// varint integers, a length before each string and vector, a variant
/// index before each enum), and a word of the reason each gives.
const UNDECODABLE: [(&[u8], &str); 8] = [
    (&[], "UnexpectedEnd"),
    // producer 0, seq 0, then a 2-byte label that is not UTF-8.
    (&[0, 0, 2, 0xff, 0xfe, 0, 0], "Utf8"),
    // Labels longer than the message: 2^31 - 1 bytes (which `calloc`
    // would grant lazily), 2^40 (which it refuses: an unbounded decoder
    // aborts the process), 2^63 and 2^64 - 1 (a capacity overflow panic).
    // A claim is checked against the message before anything is allocated.
    (&[0, 0, 0xfc, 0xff, 0xff, 0xff, 0x7f], "LimitExceeded"),
    (&[0, 0, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0], "LimitExceeded"),
    (&[0, 0, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x80], "LimitExceeded"),
    (
        &[0, 0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        "LimitExceeded",
    ),
    // Empty label and values, then variant 9 of a 4-variant enum.
    (&[0, 0, 0, 0, 9], "variant index"),
    // A whole record (all zero, `Kind::Heartbeat`), then one byte more.
    (&[0, 0, 0, 0, 0, 0xaa], "1 bytes left over"),
];

#[test]
fn undecodable_bytes_are_a_decode_error_in_the_receiving_process_and_the_channel_goes_on() {
    let record = std::any::type_name::<Record>();
    for mpmc in [false, true] {
        let name = ShmName::new("typed-undecodable");
        let endpoint = records(mpmc).create(&name).unwrap();
        // Everything is in the channel before the receiver starts: each bad
        // message from a raw byte sender (raw bytes open any channel,
        // bypassing the codec), each followed by a good record.
        let mut expected = Vec::new();
        for (seq, (bytes, reason)) in (0u64..).zip(UNDECODABLE) {
            let raw = Channel::bytes().open(&name).unwrap();
            raw.sender().unwrap().send(bytes).unwrap();
            endpoint
                .sender()
                .unwrap()
                .send(Record::new(5, seq))
                .unwrap();
            expected.push((format!("decode error: {record}: "), reason));
            expected.push((format!("record 5 {seq} intact"), ""));
        }
        expected.push(("disconnected".to_owned(), ""));

        let report = succeeded(start_peer(&["report", &name]));
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), expected.len(), "mpmc {mpmc}: {report}");
        for (line, (start, word)) in lines.iter().zip(&expected) {
            assert!(
                line.starts_with(start.as_str()) && line.contains(word),
                "mpmc {mpmc}: {line:?} is not {start:?} with {word:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Plain old data, in place

#[test]
fn samples_written_in_place_by_forked_children_are_read_in_place() {
    const COUNT: u64 = MILLION / 2;
    for (mpmc, producers) in [(false, 1u32), (true, 2)] {
        let endpoint = samples(mpmc).anonymous().unwrap();
        let mut rx = endpoint.receiver().unwrap();
        // As in `typed-peer fork`: keeps the MPMC producer role taken until
        // every child is done.
        let keep_producing = mpmc.then(|| endpoint.sender().unwrap());
        let children: Vec<ForkedChild> = (0..producers)
            .map(|source| {
                // Attaches its own sender (handles belong to the process
                // that attached them) and writes each sample in its slot.
                let write_samples = || {
                    let Ok(mut tx) = endpoint.sender() else {
                        return 2;
                    };
                    for seq in 0..COUNT {
                        let Ok(mut slot) = tx.reserve() else {
                            return 3;
                        };
                        slot.fill(source, seq);
                        if slot.commit().is_err() {
                            return 4;
                        }
                    }
                    0
                };
                // SAFETY: the child attaches, reserves, writes plain fields
                // and commits: atomics, futex calls and plain memory, no
                // allocation and no lock.
                unsafe { ForkedChild::fork(write_samples) }.unwrap()
            })
            .collect();

        let mut next = vec![0u64; producers as usize];
        let mut wait = BoundedWait::new("a sample", STALL);
        for received in 0..u64::from(producers) * COUNT {
            let sample = loop {
                match rx.try_recv_ref() {
                    Ok(sample) => break sample,
                    Err(RecvError::Empty) => wait
                        .snooze()
                        .unwrap_or_else(|e| panic!("after {received} samples: {e}")),
                    Err(e) => panic!("after {received} samples: {e}"),
                }
            };
            wait.reset();
            // Checked where it lies, in the ring.
            let expected = next
                .get_mut(sample.source as usize)
                .unwrap_or_else(|| panic!("a sample from no producer: {:?}", *sample));
            assert_eq!(
                *sample,
                Sample::new(sample.source, *expected),
                "mpmc {mpmc}"
            );
            *expected += 1;
        }
        for child in &children {
            let status = child.wait(STALL).unwrap();
            assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
        }
        drop(keep_producing);
        assert_eq!(rx.recv_timeout(STALL), Err(RecvError::Disconnected));
    }
}

#[test]
fn an_unrelated_process_answers_samples_in_place() {
    const SOURCE: u32 = 1;
    /// Requests sent and not yet answered, at most: fewer than either
    /// channel holds, so neither side waits for room while the other waits
    /// for it.
    const WINDOW: u64 = 128;
    let (requests, replies) = (
        ShmName::new("typed-requests"),
        ShmName::new("typed-replies"),
    );
    // One channel of each kind.
    let request_end = samples(false).create(&requests).unwrap();
    let reply_end = samples(true).create(&replies).unwrap();
    let mut tx = request_end.sender().unwrap();
    let mut rx = reply_end.receiver().unwrap();
    let peer = start_peer(&["pod-echo", &requests, &replies]);

    let (mut sent, mut answered) = (0u64, 0u64);
    let mut wait = BoundedWait::new("a reply", STALL).watching(peer.pid());
    while answered < MILLION {
        let mut progressed = false;
        if sent < MILLION && sent - answered < WINDOW {
            match tx.try_reserve() {
                Ok(mut slot) => {
                    slot.fill(SOURCE, sent);
                    slot.commit().unwrap();
                    sent += 1;
                    progressed = true;
                }
                Err(SendFailure::Full) => {}
                Err(e) => panic!("request {sent}: {e}"),
            }
        }
        match rx.try_recv_ref() {
            Ok(reply) => {
                assert_eq!(*reply, Sample::new(SOURCE + 1, answered));
                answered += 1;
                progressed = true;
            }
            Err(RecvError::Empty) => {}
            Err(e) => panic!("reply {answered}: {e}"),
        }
        if progressed {
            wait.reset();
        } else if let Err(e) = wait.snooze() {
            panic!("{sent} requests sent, {answered} answered: {e}");
        }
    }
    drop(tx); // the peer drains, sees the requests disconnected and leaves
    assert_eq!(succeeded(peer), format!("answered {MILLION}\n"));
    assert_eq!(rx.recv_timeout(STALL), Err(RecvError::Disconnected));
}

// ---------------------------------------------------------------------------
// Disconnection

#[test]
fn a_receiver_drains_what_a_killed_sender_left_then_learns_it_is_gone() {
    const COUNT: u64 = 20;
    for mpmc in [false, true] {
        let name = ShmName::new("typed-killed");
        let endpoint = records(mpmc).create(&name).unwrap();
        let mut rx = endpoint.receiver().unwrap();
        let mut peer = start_peer(&["send-then-hang", &name, &COUNT.to_string()]);
        assert_eq!(
            peer.read_line(STALL),
            format!("sent {COUNT}"),
            "mpmc {mpmc}"
        );

        kill(peer.pid(), Signal::SIGKILL).unwrap();
        let status = peer.wait_ended(STALL);
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGKILL, _)),
            "{status:?}"
        );
        // The records are still in the channel. Plain `recv`, which has no
        // limit of its own, runs on a thread that this test waits for only
        // so long.
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let received: Vec<_> = (0..=COUNT).map(|_| rx.recv()).collect();
            let _ = done_tx.send((received, rx.try_recv()));
        });
        let (received, after) = done_rx
            .recv_timeout(STALL)
            .unwrap_or_else(|_| panic!("mpmc {mpmc}: `recv` still blocked after {STALL:?}"));
        for (seq, record) in (0..COUNT).zip(&received) {
            assert_eq!(*record, Ok(Record::new(3, seq)), "mpmc {mpmc}");
        }
        assert_eq!(received[COUNT as usize], Err(RecvError::Disconnected));
        assert_eq!(after, Err(RecvError::Disconnected), "and it stays so");
    }
}
