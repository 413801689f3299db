//! End-to-end tests of the `producer` and `consumer` demo binaries: real
//! processes over a named shm ring, each test bounded in time.
//!
//! Every child is held by a [`SpawnedChild`] guard that kills and reaps it if
//! the test fails, and every shm name by a [`ShmName`] guard that removes it,
//! so a failing test leaves neither processes nor names behind.

use std::os::unix::fs::MetadataExt;
use std::thread;
use std::time::{Duration, Instant};

use ipc_tests::name::ShmName;
use ipc_tests::spawn::{Finished, SpawnedChild};
use ipc_tests::wait::BoundedWait;
use nix::sys::signal::{kill, Signal};

const PRODUCER: &str = env!("CARGO_BIN_EXE_producer");
const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

/// Longest any child may run in a test that expects it to finish.
const LIMIT: Duration = Duration::from_secs(60);

/// Waits (bounded) until the object under `name` is one `creator` made (its
/// header names `creator`'s pid), not a stale one left by another process.
fn wait_created_by(name: &ShmName, creator: &SpawnedChild) {
    let made_by_creator = || {
        let opened = ipc_core::RegionOptions::new()
            .init_timeout(Duration::from_millis(50))
            .open_shm(name);
        matches!(opened, Ok(region) if region.creator_pid() == creator.pid().as_raw() as u32)
    };
    wait_until(
        made_by_creator,
        creator,
        "the consumer to re-create its name",
    );
}

/// Waits (bounded) until the consumer `creator` has created `name`.
fn wait_created(name: &ShmName, creator: &SpawnedChild) {
    wait_until(
        || name.dev_shm().exists(),
        creator,
        "the consumer to create its name",
    );
}

/// Waits until `done` holds; fails the test if `creator` ends first or the
/// wait lasts longer than [`LIMIT`].
fn wait_until(mut done: impl FnMut() -> bool, creator: &SpawnedChild, what: &'static str) {
    let mut wait = BoundedWait::new(what, LIMIT).watching(creator.pid());
    while !done() {
        if let Err(e) = wait.snooze() {
            panic!("`{}`: {e}", creator.what());
        }
    }
}

fn assert_failure(what: &str, out: &Finished, code: i32, stderr_has: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: wrong exit status ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains(stderr_has),
        "{what}: stderr lacks {stderr_has:?}:\n{}",
        out.stderr
    );
}

/// A producer whose stream the consumer rejects: it either sent everything
/// before the consumer gave up, or was told at once that the consumer left.
fn assert_sent_or_rejected(sent: &Finished) {
    if !sent.status.success() {
        assert_failure("producer", sent, 1, "every consumer of the ring is gone; ");
    }
}

/// How many messages the consumer's summary line says it received.
fn received(out: &Finished) -> u64 {
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("received "))
        .unwrap_or_else(|| panic!("no summary line in:\n{}", out.stdout));
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad summary line {line:?}"))
}

#[test]
fn consumer_then_producer_verifies_200k_random_messages() {
    let name = ShmName::new("ordered");
    let consumer = SpawnedChild::run(CONSUMER, &[name.as_str(), "200000", "random:512"]);
    wait_created(&name, &consumer);
    let producer = SpawnedChild::run(PRODUCER, &[name.as_str(), "200000", "random:512"]);

    let sent = producer.finish(LIMIT);
    let got = consumer.finish(LIMIT);
    sent.assert_success();
    got.assert_success();
    assert!(
        sent.stdout.contains("sent 200000 messages"),
        "{}",
        sent.stdout
    );
    assert_eq!(received(&got), 200_000);
    assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
    assert!(got.stdout.contains("MB/s"), "{}", got.stdout);
    // The consumer owns the name and removed it on a normal exit.
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());
}

#[test]
fn producer_started_first_waits_for_the_consumer() {
    let name = ShmName::new("producer-first");
    let args = [name.as_str(), "50000", "100", "--seed", "7"];
    let producer = SpawnedChild::run(PRODUCER, &args);
    thread::sleep(Duration::from_millis(300));
    assert!(!name.dev_shm().exists());
    let consumer = SpawnedChild::run(CONSUMER, &args);

    let sent = producer.finish(LIMIT);
    let got = consumer.finish(LIMIT);
    sent.assert_success();
    got.assert_success();
    assert_eq!(received(&got), 50_000);
    assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());
}

#[test]
fn second_consumer_on_the_same_name_is_refused() {
    let name = ShmName::new("second-consumer");
    let first = SpawnedChild::run(CONSUMER, &[name.as_str(), "10", "64", "--timeout", "30"]);
    wait_created(&name, &first);

    let second = SpawnedChild::run(CONSUMER, &[name.as_str(), "10", "64"]).finish(LIMIT);
    assert_failure("second consumer", &second, 1, "already exists");
    assert!(second.stderr.contains(name.as_str()), "{}", second.stderr);
    // The loser neither stopped the first consumer nor removed its name.
    assert!(first.is_running(), "the first consumer died");
    assert!(
        name.dev_shm().exists(),
        "the second consumer removed the name"
    );

    let sent = SpawnedChild::run(PRODUCER, &[name.as_str(), "10", "64"]).finish(LIMIT);
    sent.assert_success();
    let got = first.finish(LIMIT);
    got.assert_success();
    assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
}

/// How soon a blocked peer must report a killed one: the library notices in
/// tens of milliseconds; this leaves room for a loaded machine, and is still
/// far below the `--timeout` the peer was given.
const AT_ONCE: Duration = Duration::from_secs(5);

#[test]
fn killed_producer_is_reported_at_once() {
    let name = ShmName::new("killed-producer");
    let total = "10000000";
    let consumer = SpawnedChild::run(CONSUMER, &[name.as_str(), total, "64", "--timeout", "30"]);
    wait_created(&name, &consumer);
    let producer = SpawnedChild::run(PRODUCER, &[name.as_str(), total, "64", "--rate", "20000"]);
    thread::sleep(Duration::from_secs(1));
    assert!(producer.is_running(), "the producer finished too early");
    kill(producer.pid(), Signal::SIGKILL).expect("SIGKILL the producer");
    let killed_at = Instant::now();
    let killed = producer.finish(LIMIT);
    assert_eq!(killed.status.code(), None, "the producer was not killed");

    let got = consumer.finish(LIMIT);
    let after_kill = killed_at.elapsed();
    assert_failure(
        "consumer",
        &got,
        1,
        "every producer of the ring is gone and the ring is empty; ",
    );
    assert_eq!(
        got.stderr.lines().count(),
        2,
        "one line of error:\n{}",
        got.stderr
    );
    assert!(
        after_kill < AT_ONCE,
        "the consumer took {after_kill:?} to report the dead producer"
    );
    let n = received(&got);
    assert!(n > 0 && n < 10_000_000, "received {n}: not mid-stream");
    assert!(!got.stdout.contains("verified OK"), "{}", got.stdout);
    // The error path removed the name too.
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());
}

#[test]
fn killed_consumer_is_reported_at_once() {
    let name = ShmName::new("killed-consumer");
    let total = "100000000";
    let consumer = SpawnedChild::run(CONSUMER, &[name.as_str(), total, "64", "--timeout", "30"]);
    wait_created(&name, &consumer);
    let producer = SpawnedChild::run(PRODUCER, &[name.as_str(), total, "64", "--timeout", "30"]);
    thread::sleep(Duration::from_millis(500));
    assert!(producer.is_running(), "the producer finished too early");
    kill(consumer.pid(), Signal::SIGKILL).expect("SIGKILL the consumer");
    let killed_at = Instant::now();
    assert_eq!(consumer.finish(LIMIT).status.code(), None);

    let out = producer.finish(LIMIT);
    let after_kill = killed_at.elapsed();
    assert_failure("producer", &out, 1, "every consumer of the ring is gone; ");
    assert_eq!(out.stderr.lines().count(), 1, "one line:\n{}", out.stderr);
    assert!(
        after_kill < AT_ONCE,
        "the producer took {after_kill:?} to report the dead consumer"
    );
}

/// Waits (bounded) until `name`'s queue has `consumers` live consumers.
fn wait_consumers(name: &ShmName, consumers: usize, creator: &SpawnedChild) {
    let attached = || {
        let Ok(region) = ipc_core::RegionOptions::new().open_shm(name) else {
            return false;
        };
        let live = region
            .participants()
            .iter()
            .filter(|e| e.alive && e.role == Some(ipc_core::participants::Role::Consumer))
            .count();
        live == consumers
    };
    wait_until(attached, creator, "the consumers to attach");
}

#[test]
fn mpmc_two_producers_two_consumers_deliver_every_message_once() {
    let name = ShmName::new("mpmc-2p2c");
    let n = name.as_str();
    // Each consumer takes 100000 of the producers' 2 x 100000 messages.
    let consumer_args = [n, "100000", "random:200", "--mpmc", "--timeout", "30"];
    let first = SpawnedChild::run(CONSUMER, &consumer_args);
    wait_created(&name, &first);
    let second = SpawnedChild::run(CONSUMER, &consumer_args);
    wait_consumers(&name, 2, &first);
    // Paced, so the second producer attaches long before the first is done
    // (a queue whose every producer has left is disconnected).
    let producer_args = [n, "100000", "random:200", "--mpmc", "--rate", "50000"];
    let producers = [
        SpawnedChild::run(PRODUCER, &producer_args),
        SpawnedChild::run(PRODUCER, &producer_args),
    ];

    for producer in producers {
        let sent = producer.finish(LIMIT);
        sent.assert_success();
        assert!(
            sent.stdout.contains("sent 100000 messages"),
            "{}",
            sent.stdout
        );
    }
    let (a, b) = (first.finish(LIMIT), second.finish(LIMIT));
    for got in [&a, &b] {
        got.assert_success();
        assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
        assert_eq!(received(got), 100_000);
    }
    // Each consumer verified each producer's order; the counts add up, so
    // every message went to exactly one of them.
    assert!(b.stderr.contains("joining the queue"), "{}", b.stderr);
    assert!(
        a.stdout.contains("from 2 producer(s)") || b.stdout.contains("from 2 producer(s)"),
        "{}\n{}",
        a.stdout,
        b.stdout
    );
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());
}

#[test]
fn mpmc_killed_producer_is_reported_at_once_by_every_consumer() {
    let name = ShmName::new("mpmc-killed");
    let n = name.as_str();
    let consumer_args = [n, "10000000", "64", "--mpmc", "--timeout", "30"];
    let first = SpawnedChild::run(CONSUMER, &consumer_args);
    wait_created(&name, &first);
    let second = SpawnedChild::run(CONSUMER, &consumer_args);
    wait_consumers(&name, 2, &first);
    let producer = SpawnedChild::run(
        PRODUCER,
        &[n, "10000000", "64", "--mpmc", "--rate", "20000"],
    );
    thread::sleep(Duration::from_secs(1));
    assert!(producer.is_running(), "the producer finished too early");
    kill(producer.pid(), Signal::SIGKILL).expect("SIGKILL the producer");
    let killed_at = Instant::now();
    assert_eq!(producer.finish(LIMIT).status.code(), None);

    let (a, b) = (first.finish(LIMIT), second.finish(LIMIT));
    let after_kill = killed_at.elapsed();
    for got in [&a, &b] {
        assert_failure(
            "consumer",
            got,
            1,
            "every producer of the ring is gone and the ring is empty; ",
        );
        assert!(!got.stdout.contains("verified OK"), "{}", got.stdout);
    }
    assert!(
        after_kill < AT_ONCE,
        "the consumers took {after_kill:?} to report the dead producer"
    );
    assert!(received(&a) + received(&b) > 0, "nothing arrived");
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());
}

#[test]
fn mpmc_corrupted_stream_is_reported_not_verified() {
    let name = ShmName::new("mpmc-wrong-seed");
    let n = name.as_str();
    let consumer = SpawnedChild::run(CONSUMER, &[n, "100", "64", "--mpmc", "--timeout", "10"]);
    wait_created(&name, &consumer);
    let sent =
        SpawnedChild::run(PRODUCER, &[n, "100", "64", "--mpmc", "--seed", "1"]).finish(LIMIT);
    assert_sent_or_rejected(&sent);
    let got = consumer.finish(LIMIT);
    assert_failure(
        "consumer",
        &got,
        1,
        "error: message 0 of 100: message 0 of producer ",
    );
    assert!(!got.stdout.contains("verified OK"), "{}", got.stdout);
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let name = ShmName::new("bad-args");
    let n = name.as_str();
    let common: &[&[&str]] = &[
        &[],
        &[n],
        &[n, "10"],
        &[n, "10", "64", "extra"],
        &[n, "ten", "64"],
        &[n, "10", "-3"],
        &[n, "10", "random:"],
        &[n, "10", "random:x"],
        &[n, "10", "64", "--timeout"],
        &[n, "10", "64", "--timeout", "0"],
        &[n, "10", "64", "--timeout", "soon"],
        &[n, "10", "64", "--seed", "-1"],
        &[n, "10", "64", "--bogus", "1"],
        &["/a/b", "10", "64"],
    ];
    let consumer_only: &[&[&str]] = &[
        &[n, "10", "64", "--capacity", "1000"],
        &[n, "10", "64", "--mpmc", "--capacity", "1000"],
        &[n, "10", "64", "--mpmc", "--capacity", "1"],
        &[n, "10", "64", "--capacity", "64"],
        &[n, "10", "random:4096", "--capacity", "4096"],
    ];
    let producer_only: &[&[&str]] = &[
        &[n, "10", "64", "--rate", "-1"],
        &[n, "10", "64", "--rate", "fast"],
    ];
    let cases = common
        .iter()
        .flat_map(|args| [(CONSUMER, *args), (PRODUCER, *args)])
        .chain(consumer_only.iter().map(|args| (CONSUMER, *args)))
        .chain(producer_only.iter().map(|args| (PRODUCER, *args)));
    for (bin, args) in cases {
        let out = SpawnedChild::run(bin, args).finish(LIMIT);
        let what = format!("{bin} {args:?}");
        assert_failure(&what, &out, 2, "usage: ");
        assert!(out.stderr.starts_with("error: "), "{what}: {}", out.stderr);
    }
    assert!(!name.dev_shm().exists(), "bad arguments created {n}");

    // `--help` is not an error.
    for bin in [CONSUMER, PRODUCER] {
        let out = SpawnedChild::run(bin, &["--help"]).finish(LIMIT);
        out.assert_success();
        assert!(out.stdout.starts_with("usage: "), "{}", out.stdout);
    }
}

#[test]
fn consumer_removes_the_name_on_every_exit() {
    // Timed out with no producer at all.
    let name = ShmName::new("cleanup-timeout");
    let consumer = SpawnedChild::run(CONSUMER, &[name.as_str(), "5", "8", "--timeout", "0.5"]);
    wait_created(&name, &consumer);
    let out = consumer.finish(LIMIT);
    assert_failure("consumer", &out, 1, "no message for 0.5 s after 0 of 5");
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());

    // Stopped by SIGTERM.
    let name = ShmName::new("cleanup-sigterm");
    let consumer = SpawnedChild::run(CONSUMER, &[name.as_str(), "5", "8", "--timeout", "30"]);
    wait_created(&name, &consumer);
    kill(consumer.pid(), Signal::SIGTERM).expect("SIGTERM the consumer");
    let out = consumer.finish(LIMIT);
    assert_failure("consumer", &out, 1, "interrupted by a signal");
    assert!(out.took < Duration::from_secs(20), "took {:?}", out.took);
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());
}

#[test]
fn name_left_by_a_killed_consumer_is_taken_over() {
    let name = ShmName::new("stale");
    let dead = SpawnedChild::run(CONSUMER, &[name.as_str(), "10", "64", "--timeout", "30"]);
    // Killed before its header is written, a creator leaves an object that
    // is nobody's for sure, which `remove_stale_shm` rightly leaves alone.
    wait_created_by(&name, &dead);
    kill(dead.pid(), Signal::SIGKILL).expect("SIGKILL the consumer");
    assert_eq!(dead.finish(LIMIT).status.code(), None);
    assert!(name.dev_shm().exists(), "SIGKILL cannot remove the name");

    let stale = std::fs::metadata(name.dev_shm())
        .expect("the stale object")
        .ino();
    let consumer = SpawnedChild::run(CONSUMER, &[name.as_str(), "10", "64"]);
    // Until the new consumer has replaced the stale object, a producer would
    // attach to the orphaned ring. Watched by its inode, not by opening it:
    // an opener holds the object's lock for a moment, and a consumer that
    // finds the stale one locked must leave it alone.
    wait_until(
        || std::fs::metadata(name.dev_shm()).is_ok_and(|m| m.ino() != stale),
        &consumer,
        "the consumer to replace the stale object",
    );
    let sent = SpawnedChild::run(PRODUCER, &[name.as_str(), "10", "64"]).finish(LIMIT);
    sent.assert_success();
    let got = consumer.finish(LIMIT);
    got.assert_success();
    assert!(got.stderr.contains("removed stale"), "{}", got.stderr);
    assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());
}

#[test]
fn corrupted_stream_is_reported_not_verified() {
    // A producer with another seed sends a stream the consumer must reject.
    let name = ShmName::new("wrong-seed");
    let consumer = SpawnedChild::run(CONSUMER, &[name.as_str(), "100", "64", "--timeout", "10"]);
    wait_created(&name, &consumer);
    let sent =
        SpawnedChild::run(PRODUCER, &[name.as_str(), "100", "64", "--seed", "1"]).finish(LIMIT);
    assert_sent_or_rejected(&sent);
    let got = consumer.finish(LIMIT);
    assert_failure("consumer", &got, 1, "error: message 0 of 100: ");
    assert!(!got.stdout.contains("verified OK"), "{}", got.stdout);
    assert!(!name.dev_shm().exists(), "{} left behind", name.as_str());
}

#[test]
fn producer_refuses_messages_larger_than_the_ring_takes() {
    let name = ShmName::new("too-large");
    let consumer = SpawnedChild::run(CONSUMER, &[name.as_str(), "10", "64", "--timeout", "30"]);
    wait_created(&name, &consumer);
    let sent = SpawnedChild::run(PRODUCER, &[name.as_str(), "10", "128"]).finish(LIMIT);
    assert_failure("producer", &sent, 1, "its maximum message is 64 bytes");
    // The producer attached and left: the consumer is told so, at once.
    assert_failure(
        "consumer",
        &consumer.finish(LIMIT),
        1,
        "every producer of the ring is gone",
    );
}

#[test]
fn producer_without_a_consumer_gives_up() {
    let name = ShmName::new("no-consumer");
    let out =
        SpawnedChild::run(PRODUCER, &[name.as_str(), "10", "8", "--timeout", "0.5"]).finish(LIMIT);
    assert_failure("producer", &out, 1, "not found after waiting");
}

#[test]
fn producer_gives_up_when_the_consumer_stops_draining() {
    // The consumer wants fewer messages than the producer sends; once it has
    // them it exits, and the producer is told its consumer is gone.
    let name = ShmName::new("stalled");
    let consumer = SpawnedChild::run(
        CONSUMER,
        &[name.as_str(), "10", "512", "--capacity", "65536"],
    );
    wait_created(&name, &consumer);
    let out = SpawnedChild::run(
        PRODUCER,
        &[name.as_str(), "100000", "512", "--timeout", "1"],
    )
    .finish(LIMIT);
    assert_failure("producer", &out, 1, "every consumer of the ring is gone");
    consumer.finish(LIMIT).assert_success();
}
