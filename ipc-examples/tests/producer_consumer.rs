//! End-to-end tests of the `producer` and `consumer` demo binaries: real
//! processes over a named shm ring, each test bounded in time.
//!
//! Every child is held by a [`Proc`] guard that kills and reaps it if the test
//! fails, and every shm name by a [`NameGuard`] that removes it, so a failing
//! test leaves neither processes nor names behind.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const PRODUCER: &str = env!("CARGO_BIN_EXE_producer");
const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

/// Longest any child may run in a test that expects it to finish.
const LIMIT: Duration = Duration::from_secs(60);

/// A unique shm name for one test; removes it (if still there) on drop.
struct NameGuard(String);

impl NameGuard {
    fn new(test: &str) -> Self {
        NameGuard(format!("/ipc-examples-pc-{}-{test}", std::process::id()))
    }

    fn as_str(&self) -> &str {
        &self.0
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/dev/shm").join(&self.0[1..])
    }

    /// Waits (bounded) until the consumer has created the name.
    fn wait_created(&self, creator: &mut Proc) {
        let deadline = Instant::now() + LIMIT;
        while !self.path().exists() {
            if let Some(status) = creator.child().try_wait().expect("try_wait") {
                panic!(
                    "{} exited ({status}) before creating {}",
                    creator.what, self.0
                );
            }
            assert!(Instant::now() < deadline, "{} was never created", self.0);
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl NameGuard {
    /// Waits until the object under the name is one `creator` made (its
    /// header names `creator`'s pid), not a stale one left by another.
    fn wait_created_by(&self, creator: &mut Proc) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let opened = ipc_core::RegionOptions::new()
                .init_timeout(Duration::from_millis(50))
                .open_shm(&self.0);
            if matches!(&opened, Ok(region) if region.creator_pid() == creator.pid().as_raw() as u32)
            {
                return;
            }
            drop(opened);
            if let Some(status) = creator.child().try_wait().expect("try_wait") {
                panic!(
                    "{} exited ({status}) before creating {}",
                    creator.what, self.0
                );
            }
            assert!(Instant::now() < deadline, "{} was never re-created", self.0);
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        let _ = ipc_core::remove_shm(&self.0);
    }
}

/// What a child left behind.
#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// A running child; killed and reaped on drop unless it was waited for.
struct Proc {
    child: Option<Child>,
    what: String,
    started: Instant,
}

impl Proc {
    fn spawn(bin: &str, args: &[&str]) -> Proc {
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {bin}: {e}"));
        let name = bin.rsplit('/').next().unwrap_or(bin);
        Proc {
            child: Some(child),
            what: format!("{name} {}", args.join(" ")),
            started: Instant::now(),
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already reaped")
    }

    fn pid(&mut self) -> Pid {
        Pid::from_raw(self.child().id() as i32)
    }

    fn is_running(&mut self) -> bool {
        self.child().try_wait().expect("try_wait").is_none()
    }

    /// Waits up to `limit` for the child to exit; kills it and fails the
    /// test if it does not.
    fn wait(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child().kill();
                let _ = self.child().wait();
                panic!("`{}` still running after {limit:?}; killed it", self.what);
            }
            thread::sleep(Duration::from_millis(5));
        };
        let took = self.started.elapsed();
        let child = self.child();
        // The demos print a few lines, far less than a pipe holds, so
        // reading after exit cannot have blocked the child.
        let mut stdout = String::new();
        let mut stderr = String::new();
        let mut out = child.stdout.take().expect("stdout");
        out.read_to_string(&mut stdout).expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        err.read_to_string(&mut stderr).expect("stderr");
        // Reaped by `try_wait` above: nothing left for `Drop` to kill.
        self.child = None;
        Finished {
            status,
            stdout,
            stderr,
            took,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn assert_success(what: &str, out: &Finished) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
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
    let name = NameGuard::new("ordered");
    let mut consumer = Proc::spawn(CONSUMER, &[name.as_str(), "200000", "random:512"]);
    name.wait_created(&mut consumer);
    let producer = Proc::spawn(PRODUCER, &[name.as_str(), "200000", "random:512"]);

    let sent = producer.wait(LIMIT);
    let got = consumer.wait(LIMIT);
    assert_success("producer", &sent);
    assert_success("consumer", &got);
    assert!(
        sent.stdout.contains("sent 200000 messages"),
        "{}",
        sent.stdout
    );
    assert_eq!(received(&got), 200_000);
    assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
    assert!(got.stdout.contains("MB/s"), "{}", got.stdout);
    // The consumer owns the name and removed it on a normal exit.
    assert!(!name.path().exists(), "{} left behind", name.as_str());
}

#[test]
fn producer_started_first_waits_for_the_consumer() {
    let name = NameGuard::new("producer-first");
    let args = [name.as_str(), "50000", "100", "--seed", "7"];
    let producer = Proc::spawn(PRODUCER, &args);
    thread::sleep(Duration::from_millis(300));
    assert!(!name.path().exists());
    let consumer = Proc::spawn(CONSUMER, &args);

    let sent = producer.wait(LIMIT);
    let got = consumer.wait(LIMIT);
    assert_success("producer", &sent);
    assert_success("consumer", &got);
    assert_eq!(received(&got), 50_000);
    assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
    assert!(!name.path().exists(), "{} left behind", name.as_str());
}

#[test]
fn second_consumer_on_the_same_name_is_refused() {
    let name = NameGuard::new("second-consumer");
    let mut first = Proc::spawn(CONSUMER, &[name.as_str(), "10", "64", "--timeout", "30"]);
    name.wait_created(&mut first);

    let second = Proc::spawn(CONSUMER, &[name.as_str(), "10", "64"]).wait(LIMIT);
    assert_failure("second consumer", &second, 1, "already exists");
    assert!(second.stderr.contains(name.as_str()), "{}", second.stderr);
    // The loser neither stopped the first consumer nor removed its name.
    assert!(first.is_running(), "the first consumer died");
    assert!(name.path().exists(), "the second consumer removed the name");

    let sent = Proc::spawn(PRODUCER, &[name.as_str(), "10", "64"]).wait(LIMIT);
    assert_success("producer", &sent);
    let got = first.wait(LIMIT);
    assert_success("first consumer", &got);
    assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
}

#[test]
fn killed_producer_makes_the_consumer_time_out() {
    let name = NameGuard::new("killed-producer");
    let total = "10000000";
    let mut consumer = Proc::spawn(CONSUMER, &[name.as_str(), total, "64", "--timeout", "2"]);
    name.wait_created(&mut consumer);
    let mut producer = Proc::spawn(PRODUCER, &[name.as_str(), total, "64", "--rate", "20000"]);
    thread::sleep(Duration::from_secs(1));
    assert!(producer.is_running(), "the producer finished too early");
    kill(producer.pid(), Signal::SIGKILL).expect("SIGKILL the producer");
    let killed_at = Instant::now();
    let killed = producer.wait(LIMIT);
    assert_eq!(killed.status.code(), None, "the producer was not killed");

    let got = consumer.wait(Duration::from_secs(30));
    let after_kill = killed_at.elapsed();
    assert_failure("consumer", &got, 1, "no message for 2.0 s");
    assert!(
        after_kill < Duration::from_secs(15),
        "the consumer took {after_kill:?} to give up"
    );
    let n = received(&got);
    assert!(n > 0 && n < 10_000_000, "received {n}: not mid-stream");
    assert!(!got.stdout.contains("verified OK"), "{}", got.stdout);
    // The error path removed the name too.
    assert!(!name.path().exists(), "{} left behind", name.as_str());
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let name = NameGuard::new("bad-args");
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
        let out = Proc::spawn(bin, args).wait(LIMIT);
        let what = format!("{bin} {args:?}");
        assert_failure(&what, &out, 2, "usage: ");
        assert!(out.stderr.starts_with("error: "), "{what}: {}", out.stderr);
    }
    assert!(!name.path().exists(), "bad arguments created {n}");

    // `--help` is not an error.
    for bin in [CONSUMER, PRODUCER] {
        let out = Proc::spawn(bin, &["--help"]).wait(LIMIT);
        assert_success(bin, &out);
        assert!(out.stdout.starts_with("usage: "), "{}", out.stdout);
    }
}

#[test]
fn consumer_removes_the_name_on_every_exit() {
    // Timed out with no producer at all.
    let name = NameGuard::new("cleanup-timeout");
    let mut consumer = Proc::spawn(CONSUMER, &[name.as_str(), "5", "8", "--timeout", "0.5"]);
    name.wait_created(&mut consumer);
    let out = consumer.wait(LIMIT);
    assert_failure("consumer", &out, 1, "no message for 0.5 s after 0 of 5");
    assert!(!name.path().exists(), "{} left behind", name.as_str());

    // Stopped by SIGTERM.
    let name = NameGuard::new("cleanup-sigterm");
    let mut consumer = Proc::spawn(CONSUMER, &[name.as_str(), "5", "8", "--timeout", "30"]);
    name.wait_created(&mut consumer);
    kill(consumer.pid(), Signal::SIGTERM).expect("SIGTERM the consumer");
    let out = consumer.wait(LIMIT);
    assert_failure("consumer", &out, 1, "interrupted by a signal");
    assert!(out.took < Duration::from_secs(20), "took {:?}", out.took);
    assert!(!name.path().exists(), "{} left behind", name.as_str());
}

#[test]
fn name_left_by_a_killed_consumer_is_taken_over() {
    let name = NameGuard::new("stale");
    let mut dead = Proc::spawn(CONSUMER, &[name.as_str(), "10", "64", "--timeout", "30"]);
    name.wait_created(&mut dead);
    kill(dead.pid(), Signal::SIGKILL).expect("SIGKILL the consumer");
    assert_eq!(dead.wait(LIMIT).status.code(), None);
    assert!(name.path().exists(), "SIGKILL cannot remove the name");

    let mut consumer = Proc::spawn(CONSUMER, &[name.as_str(), "10", "64"]);
    // Until the new consumer has replaced the stale object, a producer would
    // attach to the orphaned ring.
    name.wait_created_by(&mut consumer);
    let sent = Proc::spawn(PRODUCER, &[name.as_str(), "10", "64"]).wait(LIMIT);
    assert_success("producer", &sent);
    let got = consumer.wait(LIMIT);
    assert_success("consumer", &got);
    assert!(got.stderr.contains("removed stale"), "{}", got.stderr);
    assert!(got.stdout.contains("verified OK"), "{}", got.stdout);
    assert!(!name.path().exists(), "{} left behind", name.as_str());
}

#[test]
fn corrupted_stream_is_reported_not_verified() {
    // A producer with another seed sends a stream the consumer must reject.
    let name = NameGuard::new("wrong-seed");
    let mut consumer = Proc::spawn(CONSUMER, &[name.as_str(), "100", "64", "--timeout", "10"]);
    name.wait_created(&mut consumer);
    let sent = Proc::spawn(PRODUCER, &[name.as_str(), "100", "64", "--seed", "1"]).wait(LIMIT);
    assert_success("producer", &sent);
    let got = consumer.wait(LIMIT);
    assert_failure("consumer", &got, 1, "error: message 0 of 100: ");
    assert!(!got.stdout.contains("verified OK"), "{}", got.stdout);
    assert!(!name.path().exists(), "{} left behind", name.as_str());
}

#[test]
fn producer_refuses_messages_larger_than_the_ring_takes() {
    let name = NameGuard::new("too-large");
    let mut consumer = Proc::spawn(CONSUMER, &[name.as_str(), "10", "64", "--timeout", "30"]);
    name.wait_created(&mut consumer);
    let sent = Proc::spawn(PRODUCER, &[name.as_str(), "10", "128"]).wait(LIMIT);
    assert_failure("producer", &sent, 1, "its maximum message is 64 bytes");
    // The producer attached and left: the consumer is told so, at once.
    assert_failure(
        "consumer",
        &consumer.wait(LIMIT),
        1,
        "every producer of the ring is gone",
    );
}

#[test]
fn producer_without_a_consumer_gives_up() {
    let name = NameGuard::new("no-consumer");
    let out = Proc::spawn(PRODUCER, &[name.as_str(), "10", "8", "--timeout", "0.5"]).wait(LIMIT);
    assert_failure("producer", &out, 1, "not found after waiting");
}

#[test]
fn producer_gives_up_when_the_consumer_stops_draining() {
    // The consumer wants fewer messages than the producer sends; once it has
    // them it exits, and the producer is told its consumer is gone.
    let name = NameGuard::new("stalled");
    let mut consumer = Proc::spawn(
        CONSUMER,
        &[name.as_str(), "10", "512", "--capacity", "65536"],
    );
    name.wait_created(&mut consumer);
    let out = Proc::spawn(
        PRODUCER,
        &[name.as_str(), "100000", "512", "--timeout", "1"],
    )
    .wait(LIMIT);
    assert_failure("producer", &out, 1, "every consumer of the ring is gone");
    assert_success("consumer", &consumer.wait(LIMIT));
}
