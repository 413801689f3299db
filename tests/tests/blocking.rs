//! The blocking calls across processes, on both ring kinds: a blocked call
//! wakes when the peer makes progress, times out when told, returns
//! `Disconnected` when the peer leaves or is killed (with `SIGKILL`, in or
//! out of a call) and not when it is only stopped; streams of millions of
//! verified messages and a million park-at-once round trips lose nothing;
//! a stream whose consumer keeps up makes no system call; a consumer that
//! attaches late, or again after a death, misses nothing.
//!
//! Each scenario is written once, generic over [`RingKind`], and run on
//! both kinds by [`on_both_kinds!`]: `spsc::NAME` and `mpmc::NAME`. The
//! peer is `blocking-peer` (spawned) or a forked child; the facts that
//! need a quiet process to be measured (system calls made) are measured
//! in the peer, since other tests run on other threads of this one.
//!
//! Timing bounds are the figure plus [`SLACK`] for a loaded 2-core
//! machine; the measured values are printed (`--nocapture`).

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipc_core::participants::Role;
use ipc_core::wait::{WaitStrategy, LIVENESS_TICK};
use ipc_core::{Region, RegionOptions};
use ipc_tests::fork::ForkedChild;
use ipc_tests::name::ShmName;
use ipc_tests::payload::PayloadGen;
use ipc_tests::probe::{thread_cpu_time, Task};
use ipc_tests::rings::{strategy_arg, Receiver, RecvError, RingKind, SendError, Sender};
use ipc_tests::spawn::{Finished, SpawnedChild};
use ipc_tests::wait::BoundedWait;
use ipc_tests::watchdog::Watchdog;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;

const PEER: &str = env!("CARGO_BIN_EXE_blocking-peer");
/// Longest any wait for a peer may last without progress.
const STALL: Duration = Duration::from_secs(60);
/// Longest a whole scenario may take (the heavy ones say their own).
const SCENARIO: Duration = Duration::from_secs(300);
/// The bound on noticing a dead or departed peer.
const NOTICE: Duration = Duration::from_millis(100);
/// Scheduling slack on top of any timing bound: this is a shared 2-core VM,
/// other builds run beside the tests, and tests run two at a time.
const SLACK: Duration = Duration::from_millis(400);
/// CPU a call may use while blocked for a while on a peer that does
/// nothing: a spin would use about the whole wait, the spin-then-park
/// strategy a few tens of microseconds and a lock probe per liveness tick.
const IDLE_CPU: Duration = Duration::from_millis(50);

/// Defines a `#[test]` per scenario for each ring kind, in modules `spsc`
/// and `mpmc`, each calling the generic scenario.
macro_rules! on_both_kinds {
    ($($scenario:ident),* $(,)?) => {
        mod spsc {
            $(#[test]
            fn $scenario() {
                super::$scenario::<ipc_tests::rings::Spsc>();
            })*
        }
        mod mpmc {
            $(#[test]
            fn $scenario() {
                super::$scenario::<ipc_tests::rings::Mpmc>();
            })*
        }
    };
}

on_both_kinds!(
    a_blocked_recv_wakes_on_a_send,
    a_blocked_send_wakes_on_a_recv,
    timeouts_return_within_their_bound,
    a_deadline_in_the_past_returns_at_once,
    a_stopped_peer_is_not_reported_dead,
    a_producer_that_exits_disconnects_its_blocked_consumer,
    a_consumer_that_exits_disconnects_its_blocked_producer,
    a_producer_killed_in_send_leaves_its_messages_to_the_consumer,
    a_producer_killed_out_of_a_call_disconnects_its_blocked_consumer,
    a_consumer_killed_in_recv_loses_nothing_sent_after,
    a_consumer_killed_asleep_leaves_no_wake_syscall_behind,
    a_consumer_killed_out_of_a_call_disconnects_its_blocked_producer,
    short_timeouts_in_a_loop_notice_a_killed_producer,
    short_timeouts_in_a_loop_notice_a_killed_consumer,
    a_late_consumer_gets_everything_sent_before_it_attached,
    a_stream_whose_consumer_keeps_up_makes_no_wait_syscall,
    ten_million_messages_from_a_forked_producer,
    ten_million_messages_to_a_spawned_consumer,
    a_million_park_at_once_round_trips_lose_no_wake_up,
);

// ---------------------------------------------------------------------------
// Support

/// A ring in a named shm object that a spawned peer can open.
struct Shared {
    name: ShmName,
    region: Arc<Region>,
}

impl Shared {
    /// A ring of kind `K` holding at least `messages` of up to `max` bytes.
    fn new<K: RingKind>(tag: &str, messages: u64, max: u64) -> Shared {
        let name = ShmName::new(tag);
        let layout = K::layout(messages, max).unwrap();
        let region = RegionOptions::new()
            .layout(layout)
            .create_shm(&name)
            .unwrap();
        Shared {
            name,
            region: Arc::new(region),
        }
    }

    /// Waits until `peer` has attached here as `role`.
    fn wait_attached(&self, peer: &SpawnedChild, role: Role) {
        let pid = peer.pid().as_raw() as u32;
        let mut wait = BoundedWait::new("the peer to attach", STALL).watching(peer.pid());
        while !self
            .region
            .participants()
            .iter()
            .any(|e| e.pid == pid && e.role == Some(role) && e.alive)
        {
            wait.snooze()
                .unwrap_or_else(|e| panic!("{}: {e}", peer.what()));
        }
    }
}

/// Starts `blocking-peer KIND args…`.
fn peer<K: RingKind>(args: &[&str]) -> SpawnedChild {
    let mut all = vec![K::NAME];
    all.extend_from_slice(args);
    SpawnedChild::run(PEER, &all)
}

/// The number a successful peer printed after `key`.
fn reported(done: &Finished, key: &str) -> u64 {
    done.stdout
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("`{}` printed no {key}:\n{}", done.command, done.stdout))
}

/// Runs `work` on a thread of its own: the thread, for `/proc`, and its
/// handle.
fn on_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> (Task, JoinHandle<T>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        tx.send(Task::current_thread()).unwrap();
        work()
    });
    (rx.recv().unwrap(), handle)
}

/// A call's result, when it returned, and the wall and CPU time it took.
struct Timed<T> {
    result: T,
    returned: Instant,
    wall: Duration,
    cpu: Duration,
}

fn timed<T>(call: impl FnOnce() -> T) -> Timed<T> {
    let (cpu, started) = (thread_cpu_time(), Instant::now());
    let result = call();
    Timed {
        result,
        returned: Instant::now(),
        wall: started.elapsed(),
        cpu: thread_cpu_time() - cpu,
    }
}

/// Waits until `task` is asleep in a futex: blocked in a ring call.
fn wait_blocked(task: Task, what: &'static str) {
    task.wait_until(what, STALL, |s| s.in_futex_wait())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until the peer sleeps out of any ring call (`hang`, `linger`).
fn wait_sleeping_outside(peer: &SpawnedChild) {
    let nanosleep = [libc::SYS_clock_nanosleep, libc::SYS_nanosleep];
    Task::process(peer.pid())
        .wait_until("the peer to sleep outside any call", STALL, |s| {
            s.syscall.is_some_and(|(nr, ..)| nanosleep.contains(&nr))
        })
        .unwrap_or_else(|e| panic!("{}: {e}", peer.what()));
}

fn deadline() -> Instant {
    Instant::now() + STALL
}

/// Kills `peer` with `SIGKILL` and waits until it is dead (a zombie,
/// unreaped): when the kernel has dropped its locks. When the kill was sent.
fn kill_now(peer: &SpawnedChild) -> Instant {
    let at = Instant::now();
    kill(peer.pid(), Signal::SIGKILL).unwrap();
    let status = peer.wait_ended(STALL);
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGKILL, _)),
        "{status:?}"
    );
    at
}

/// Checks that the blocked call `call` noticed its peer's departure at
/// `departed` within [`NOTICE`] plus slack, without spinning meanwhile.
fn assert_noticed<T>(call: &Timed<T>, departed: Instant, what: &str) {
    let after = call.returned.saturating_duration_since(departed);
    println!(
        "{what}: returned {after:?} after the peer left; blocked {:?} using {:?} of CPU",
        call.wall, call.cpu
    );
    assert!(
        after <= NOTICE + SLACK,
        "{what}: {after:?} after the peer left"
    );
    assert!(
        call.cpu <= IDLE_CPU,
        "{what}: {:?} of CPU in {:?}",
        call.cpu,
        call.wall
    );
}

/// Messages `from..from + count` of `gen`, received with both blocking
/// calls in turns, verified.
fn receive_verified(consumer: &mut impl Receiver, gen: PayloadGen, from: u64, count: u64) {
    let mut buf = vec![0u8; gen.max_len()];
    for seq in from..from + count {
        let verified = if seq % 2 == 0 {
            let n = consumer.recv_into_deadline(&mut buf, deadline());
            n.map(|n| gen.verify(seq, &buf[..n]))
        } else {
            consumer.recv_deadline_with(deadline(), |msg| gen.verify(seq, msg))
        };
        match verified {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("message {seq}: {e}"),
            Err(e) => panic!("message {seq} of {from}..{}: {e}", from + count),
        }
    }
}

/// Sends message `seq` of `gen` with a blocking call (a send or a grant,
/// in turns).
fn send_one(producer: &mut impl Sender, gen: PayloadGen, seq: u64) -> Result<(), SendError> {
    let len = gen.len_of(seq);
    if seq % 2 == 0 {
        let mut buf = [0u8; 256];
        gen.fill(seq, &mut buf[..len]);
        producer.send_deadline(&buf[..len], deadline())
    } else {
        producer.reserve_deadline(len, deadline(), |msg| gen.fill(seq, msg))
    }
}

/// Sends messages from `seq` on with `try_send` until the ring is full;
/// how many it took.
fn fill(producer: &mut impl Sender, gen: PayloadGen, from: u64) -> u64 {
    let mut buf = [0u8; 256];
    let mut seq = from;
    loop {
        let msg = &mut buf[..gen.len_of(seq)];
        gen.fill(seq, msg);
        match producer.try_send(msg) {
            Ok(()) => seq += 1,
            Err(SendError::Full) => return seq - from,
            Err(e) => panic!("message {seq}: {e}"),
        }
    }
}

fn number(msg: &[u8]) -> u64 {
    u64::from_le_bytes(msg.try_into().expect("an 8-byte message"))
}

// ---------------------------------------------------------------------------
// Waking

/// Rounds of the wake tests.
const WAKE_ROUNDS: u64 = 20;

/// A receive parked (`Park`) in this process wakes on each of the peer's
/// sends, and the peer's send makes the one `FUTEX_WAKE` for it: the peer
/// checks in `/proc` that our thread sleeps in a futex before each send,
/// and counts its own wait-path system calls around it.
fn a_blocked_recv_wakes_on_a_send<K: RingKind>() {
    let _limit = Watchdog::new("a_blocked_recv_wakes_on_a_send", SCENARIO);
    let data = Shared::new::<K>("wake-recv", 4, 8);
    let acks = Shared::new::<K>("wake-recv-acks", WAKE_ROUNDS + 4, 8);
    let mut consumer = K::consumer(data.region.clone()).unwrap();
    let mut acker = K::producer(acks.region.clone()).unwrap();
    consumer.set_wait_strategy(WaitStrategy::Park);
    let (task, receiver) = on_thread(move || {
        for round in 0..WAKE_ROUNDS {
            let got = consumer.recv_deadline_with(deadline(), number);
            assert_eq!(got, Ok(round));
            acker
                .send_deadline(&round.to_le_bytes(), deadline())
                .unwrap();
        }
    });
    wake_rounds::<K>("wake-receiver", &data, &acks, task);
    receiver.join().unwrap();
}

/// A send blocked (`Park`) on a full ring in this process wakes on each of
/// the peer's receives, which makes the one `FUTEX_WAKE` for it (checked as
/// in [`a_blocked_recv_wakes_on_a_send`]); what was sent meanwhile stays in
/// order for the next consumer.
fn a_blocked_send_wakes_on_a_recv<K: RingKind>() {
    let _limit = Watchdog::new("a_blocked_send_wakes_on_a_recv", SCENARIO);
    let data = Shared::new::<K>("wake-send", 4, 8);
    let acks = Shared::new::<K>("wake-send-acks", WAKE_ROUNDS + 64, 8);
    let mut producer = K::producer(data.region.clone()).unwrap();
    let mut acker = K::producer(acks.region.clone()).unwrap();
    producer.set_wait_strategy(WaitStrategy::Park);
    let (task, sender) = on_thread(move || {
        let mut sent = 0u64;
        loop {
            match producer.send_deadline(&sent.to_le_bytes(), deadline()) {
                Ok(()) => acker
                    .send_deadline(&sent.to_le_bytes(), deadline())
                    .unwrap(),
                // The peer has done its rounds and left.
                Err(SendError::Disconnected) => return sent,
                Err(e) => panic!("message {sent}: {e}"),
            }
            sent += 1;
        }
    });
    wake_rounds::<K>("wake-sender", &data, &acks, task);
    let sent = sender.join().unwrap();
    let mut consumer = K::consumer(data.region.clone()).unwrap();
    for seq in WAKE_ROUNDS..sent {
        assert_eq!(consumer.recv_deadline_with(deadline(), number), Ok(seq));
    }
    // The producer is gone with its thread.
    assert_eq!(
        consumer.try_recv_into(&mut [0; 8]),
        Err(RecvError::Disconnected),
        "{sent} sent, {WAKE_ROUNDS} received by the peer"
    );
}

/// Runs the peer's wake `mode` against our blocked thread `task`, then
/// judges from the peer's counts: of its notifications to our sleeping
/// thread, each made at most one wait-path system call, and most made
/// exactly one (the `FUTEX_WAKE`). One may find nobody asleep only when our
/// thread's liveness tick woke it in the instant between the peer's look in
/// `/proc` and its notification: rare, hence "most".
fn wake_rounds<K: RingKind>(mode: &str, data: &Shared, acks: &Shared, task: Task) {
    let (pid, tid) = (task.pid.to_string(), task.tid.to_string());
    let rounds = WAKE_ROUNDS.to_string();
    let done = peer::<K>(&[mode, &data.name, &acks.name, &pid, &tid, &rounds]).finish(STALL);
    done.assert_success();
    let (rounds, wakes) = (reported(&done, "rounds"), reported(&done, "wakes"));
    println!("{wakes} of {rounds} notifications woke a sleeper");
    assert_eq!(rounds, WAKE_ROUNDS);
    assert!(reported(&done, "max_delta") <= 1, "{}", done.stdout);
    assert!(wakes * 2 > rounds, "{}", done.stdout);
}

// ---------------------------------------------------------------------------
// Timeouts and deadlines

/// A peer holding the other role of each ring, doing nothing: in ring
/// `to_peer` we produce and it consumes, in `from_peer` the reverse.
struct Idle<K: RingKind> {
    to_peer: Shared,
    from_peer: Shared,
    producer: K::Producer,
    consumer: K::Consumer,
    peer: SpawnedChild,
}

impl<K: RingKind> Idle<K> {
    fn start(tag: &str) -> Idle<K> {
        let to_peer = Shared::new::<K>(&format!("{tag}-to"), 8, 64);
        let from_peer = Shared::new::<K>(&format!("{tag}-from"), 8, 64);
        let producer = K::producer(to_peer.region.clone()).unwrap();
        let consumer = K::consumer(from_peer.region.clone()).unwrap();
        let peer = peer::<K>(&["hold", &to_peer.name, &from_peer.name]);
        to_peer.wait_attached(&peer, Role::Consumer);
        from_peer.wait_attached(&peer, Role::Producer);
        let mut idle = Idle {
            to_peer,
            from_peer,
            producer,
            consumer,
            peer,
        };
        fill(&mut idle.producer, PayloadGen::fixed(1, 64), 0);
        idle
    }

    /// Makes the blocking call `what`, one of [`CALLS`], giving up at
    /// `until` (the `_timeout` forms: after the time left until then): with
    /// the rings empty and full, whether it timed out.
    fn times_out(&mut self, what: &str, until: Instant) -> bool {
        let (p, c) = (&mut self.producer, &mut self.consumer);
        let left = until.saturating_duration_since(Instant::now());
        let recv = |result: Result<_, RecvError>| result.map(drop) == Err(RecvError::Timeout);
        let send = |result: Result<(), SendError>| result == Err(SendError::Timeout);
        match what {
            "recv_timeout" => recv(c.recv_timeout_with(left, |_| ())),
            "recv_deadline" => recv(c.recv_deadline_with(until, |_| ())),
            "recv_into_deadline" => recv(c.recv_into_deadline(&mut [0; 64], until).map(drop)),
            "send_timeout" => send(p.send_timeout(&[0; 64], left)),
            "send_deadline" => send(p.send_deadline(&[0; 64], until)),
            "reserve_deadline" => send(p.reserve_deadline(64, until, |_| ())),
            _ => panic!("no call {what}"),
        }
    }

    fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.producer.set_wait_strategy(strategy);
        self.consumer.set_wait_strategy(strategy);
    }
}

/// The blocking calls that give up, by name.
const CALLS: [&str; 6] = [
    "recv_timeout",
    "recv_deadline",
    "recv_into_deadline",
    "send_timeout",
    "send_deadline",
    "reserve_deadline",
];

const STRATEGIES: [WaitStrategy; 3] = [
    WaitStrategy::BusyPoll,
    WaitStrategy::SpinThenPark {
        spins: WaitStrategy::DEFAULT_SPINS,
    },
    WaitStrategy::Park,
];

/// Every blocking call with a timeout or deadline of 100 ms gives up with
/// `Timeout` no sooner than told and no later than the slack after (it is
/// about 0.1 to 4 ms late here), with each wait strategy, while a live peer
/// holds the other role.
fn timeouts_return_within_their_bound<K: RingKind>() {
    let _limit = Watchdog::new("timeouts_return_within_their_bound", SCENARIO);
    let mut idle = Idle::<K>::start("timeouts");
    let timeout = Duration::from_millis(100);
    for strategy in STRATEGIES {
        idle.set_wait_strategy(strategy);
        for what in CALLS {
            let call = timed(|| idle.times_out(what, Instant::now() + timeout));
            println!("{what} {strategy:?}: {:?}", call.wall);
            assert!(call.result, "{what} with {strategy:?} did not time out");
            assert!(call.wall >= timeout, "{what} {strategy:?}: {:?}", call.wall);
            assert!(
                call.wall <= timeout + SLACK,
                "{what} {strategy:?}: {:?}",
                call.wall
            );
        }
    }
    assert!(idle.peer.is_running());
}

/// A deadline that has passed gives `Timeout` at once when there is
/// nothing to do, with every strategy: the fastest of ten tries is far
/// under a liveness tick (a wait for one would show), and none takes long.
fn a_deadline_in_the_past_returns_at_once<K: RingKind>() {
    let _limit = Watchdog::new("a_deadline_in_the_past_returns_at_once", SCENARIO);
    let mut idle = Idle::<K>::start("past");
    let past = Instant::now() - Duration::from_secs(1);
    for strategy in STRATEGIES {
        idle.set_wait_strategy(strategy);
        for what in CALLS {
            let tries: Vec<Duration> = (0..10)
                .map(|_| {
                    let call = timed(|| idle.times_out(what, past));
                    assert!(call.result, "{what} with {strategy:?} did not time out");
                    call.wall
                })
                .collect();
            let (fastest, slowest) = (tries.iter().min().unwrap(), tries.iter().max().unwrap());
            println!("{what} {strategy:?}: {fastest:?} to {slowest:?}");
            assert!(
                *fastest < LIVENESS_TICK / 4,
                "{what} {strategy:?}: {tries:?}"
            );
            assert!(*slowest < SLACK, "{what} {strategy:?}: {tries:?}");
        }
    }
    // With something to do, a passed deadline does it.
    let layout = K::layout(4, 64).unwrap();
    let region = Arc::new(
        RegionOptions::new()
            .layout(layout)
            .create_anonymous()
            .unwrap(),
    );
    let mut producer = K::producer(region.clone()).unwrap();
    let mut consumer = K::consumer(region).unwrap();
    assert_eq!(producer.send_deadline(b"late", past), Ok(()));
    assert_eq!(
        producer.reserve_deadline(5, past, |m| m.copy_from_slice(b"later")),
        Ok(())
    );
    assert_eq!(
        consumer.recv_deadline_with(past, <[u8]>::to_vec),
        Ok(b"late".to_vec())
    );
    assert_eq!(consumer.recv_into_deadline(&mut [0; 64], past), Ok(5));
    assert!(idle.peer.is_running());
}

// ---------------------------------------------------------------------------
// Stopped and dead peers

/// A peer stopped with `SIGSTOP` keeps its roles: blocked calls on it time
/// out (a second each, spanning many liveness ticks, hence many liveness
/// probes) instead of reporting `Disconnected`, without spinning, and the
/// participant table shows it alive. Once continued, it is still there.
fn a_stopped_peer_is_not_reported_dead<K: RingKind>() {
    let _limit = Watchdog::new("a_stopped_peer_is_not_reported_dead", SCENARIO);
    let mut idle = Idle::<K>::start("stopped");
    let pid = idle.peer.pid();
    kill(pid, Signal::SIGSTOP).unwrap();
    Task::process(pid)
        .wait_until("the peer to stop", STALL, |s| s.state == 'T')
        .unwrap();
    let second = Duration::from_secs(1);
    for what in ["recv_timeout", "send_timeout"] {
        let call = timed(|| idle.times_out(what, Instant::now() + second));
        println!(
            "{what} on a stopped peer: {:?} using {:?} of CPU",
            call.wall, call.cpu
        );
        assert!(call.result, "{what}: not a timeout");
        assert!(call.cpu <= IDLE_CPU, "{what}: {:?} of CPU", call.cpu);
    }
    let me = std::process::id();
    for ring in [&idle.to_peer, &idle.from_peer] {
        let entries = ring.region.participants();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries.iter().all(|e| e.alive), "{entries:?}");
        assert!(
            entries.iter().any(|e| e.pid == pid.as_raw() as u32),
            "{entries:?}"
        );
        assert!(entries.iter().any(|e| e.pid == me), "{entries:?}");
    }
    kill(pid, Signal::SIGCONT).unwrap();
    assert!(idle.times_out("recv_timeout", Instant::now() + LIVENESS_TICK * 3));
    assert!(idle.peer.is_running());
}

const SEED: u64 = 0xb10c_0000;
const MAX: usize = 200;

/// How a peer leaves a ring while we are blocked on it.
#[derive(Clone, Copy, Debug)]
enum Departure {
    /// It detaches and exits normally (destructors run).
    Exit,
    /// It is killed with `SIGKILL` while sleeping out of any ring call.
    Kill,
}

impl Departure {
    /// What the peer does after its messages (`blocking-peer`'s THEN).
    fn then(self) -> &'static str {
        match self {
            Departure::Exit => "linger:1000",
            Departure::Kill => "hang",
        }
    }

    /// Once the peer sleeps outside any call and `blocked` sleeps in one,
    /// has the peer leave: waits for its exit, or (after letting the blocked
    /// call wait long enough for a spin to show in its CPU time) kills it.
    /// When it left.
    fn leave(self, peer: &SpawnedChild, blocked: Task) -> Instant {
        wait_sleeping_outside(peer);
        wait_blocked(blocked, "our call to block on the peer");
        match self {
            Departure::Exit => {
                peer.wait_ended(STALL);
                Instant::now()
            }
            Departure::Kill => {
                std::thread::sleep(Duration::from_millis(310));
                kill_now(peer)
            }
        }
    }

    /// Checks how the peer ended: well, after an exit (a kill was
    /// checked by [`kill_now`]).
    fn check_end(self, peer: SpawnedChild) {
        if let Departure::Exit = self {
            peer.finish(STALL).assert_success();
        }
    }
}

/// A producer that exits normally while our consumer is blocked on it:
/// see [`producer_departs`].
fn a_producer_that_exits_disconnects_its_blocked_consumer<K: RingKind>() {
    producer_departs::<K>(Departure::Exit, SEED + 1);
}

/// A producer killed out of any call while our consumer is blocked on it:
/// see [`producer_departs`].
fn a_producer_killed_out_of_a_call_disconnects_its_blocked_consumer<K: RingKind>() {
    producer_departs::<K>(Departure::Kill, SEED + 4);
}

/// A producer sends 50 messages and leaves while our consumer, having
/// received them, is blocked on it: the receive returns `Disconnected`
/// within 100 ms plus slack of the departure, without spinning meanwhile.
/// A new producer then takes over, and the same consumer receives its
/// messages.
fn producer_departs<K: RingKind>(departure: Departure, seed: u64) {
    let _limit = Watchdog::new("a producer departing", SCENARIO);
    let gen = PayloadGen::random(seed, MAX);
    let ring = Shared::new::<K>("producer-departs", 100, MAX as u64);
    let mut consumer = K::consumer(ring.region.clone()).unwrap();
    let (task, receiver) = on_thread(move || {
        receive_verified(&mut consumer, gen, 0, 50);
        let recv = timed(|| consumer.recv_into_deadline(&mut [0; MAX], deadline()));
        (recv, consumer)
    });
    let (seed, max) = (seed.to_string(), MAX.to_string());
    let stream = |from| ["produce", &ring.name, from, "50", &seed, &max, "default"];
    let first = peer::<K>(&[&stream("0")[..], &[departure.then()]].concat());
    let left = departure.leave(&first, task);
    let (recv, mut consumer) = receiver.join().unwrap();
    assert_eq!(recv.result, Err(RecvError::Disconnected));
    assert_noticed(
        &recv,
        left,
        &format!("recv after the producer's {departure:?}"),
    );
    departure.check_end(first);

    // Gone: the consumer says so until another producer attaches.
    assert_eq!(
        consumer.try_recv_into(&mut [0; MAX]),
        Err(RecvError::Disconnected)
    );
    let next = peer::<K>(&[&stream("50")[..], &["linger:500"]].concat());
    ring.wait_attached(&next, Role::Producer);
    receive_verified(&mut consumer, gen, 50, 50);
    next.finish(STALL).assert_success();
    let end = consumer.recv_into_deadline(&mut [0; MAX], deadline());
    assert_eq!(end, Err(RecvError::Disconnected));
}

/// A wait shorter than the liveness tick, repeated: each times out before
/// any tick, yet the loop must learn that the peer died. Each call that
/// times out checks its peers once.
const SHORT: Duration = Duration::from_millis(5);

/// A producer killed while our consumer polls with `SHORT` timeouts: a
/// receive returns `Disconnected` within 100 ms plus slack of the kill.
fn short_timeouts_in_a_loop_notice_a_killed_producer<K: RingKind>() {
    let _limit = Watchdog::new("short receive timeouts", SCENARIO);
    let gen = PayloadGen::random(SEED + 7, MAX);
    let ring = Shared::new::<K>("short-recv-timeouts", 100, MAX as u64);
    let mut consumer = K::consumer(ring.region.clone()).unwrap();
    let (seed, max) = ((SEED + 7).to_string(), MAX.to_string());
    let args = [
        "produce", &ring.name, "0", "10", &seed, &max, "default", "hang",
    ];
    let peer = peer::<K>(&args);
    receive_verified(&mut consumer, gen, 0, 10);
    wait_sleeping_outside(&peer);
    let killed = kill_now(&peer);
    let noticed = loop {
        let result = consumer.recv_into_deadline(&mut [0; MAX], Instant::now() + SHORT);
        if result != Err(RecvError::Timeout) || killed.elapsed() > NOTICE + SLACK {
            break (result, killed.elapsed());
        }
    };
    assert_eq!(
        noticed.0,
        Err(RecvError::Disconnected),
        "{:?} after the kill",
        noticed.1
    );
    assert!(
        noticed.1 <= NOTICE + SLACK,
        "{:?} after the kill",
        noticed.1
    );
}

/// A consumer killed while our producer, on a full ring, polls with `SHORT`
/// timeouts: a send returns `Disconnected` within 100 ms plus slack.
fn short_timeouts_in_a_loop_notice_a_killed_consumer<K: RingKind>() {
    let _limit = Watchdog::new("short send timeouts", SCENARIO);
    let gen = PayloadGen::random(SEED + 8, MAX);
    let ring = Shared::new::<K>("short-send-timeouts", 64, MAX as u64);
    let mut producer = K::producer(ring.region.clone()).unwrap();
    let (seed, max) = ((SEED + 8).to_string(), MAX.to_string());
    let args = [
        "consume", &ring.name, "0", "0", &seed, &max, "default", "hang",
    ];
    let peer = peer::<K>(&args);
    ring.wait_attached(&peer, Role::Consumer);
    let full = fill(&mut producer, gen, 0);
    wait_sleeping_outside(&peer);
    let killed = kill_now(&peer);
    let noticed = loop {
        // An SPSC ring may still have room for a shorter message than the
        // one that did not fit: send until it is full again.
        let result = producer.send_deadline(&[0; MAX], Instant::now() + SHORT);
        let going_on = matches!(result, Ok(()) | Err(SendError::Timeout));
        if !going_on || killed.elapsed() > NOTICE + SLACK {
            break (result, killed.elapsed());
        }
    };
    assert_eq!(
        noticed.0,
        Err(SendError::Disconnected),
        "{full} sent, {:?} after the kill",
        noticed.1
    );
    assert!(
        noticed.1 <= NOTICE + SLACK,
        "{:?} after the kill",
        noticed.1
    );
}

/// A consumer that exits normally while our producer is blocked on the full
/// ring: see [`consumer_departs`].
fn a_consumer_that_exits_disconnects_its_blocked_producer<K: RingKind>() {
    consumer_departs::<K>(Departure::Exit, SEED + 2);
}

/// A consumer killed out of any call while our producer is blocked on the
/// full ring: see [`consumer_departs`].
fn a_consumer_killed_out_of_a_call_disconnects_its_blocked_producer<K: RingKind>() {
    consumer_departs::<K>(Departure::Kill, SEED + 6);
}

/// A consumer receives 10 messages from the full ring and leaves while our
/// producer is blocked on it again: the send returns `Disconnected` within
/// 100 ms plus slack, without spinning, and sends nothing more; a consumer
/// that attaches next resumes exactly where the first stopped, and the
/// producer sends again.
fn consumer_departs<K: RingKind>(departure: Departure, seed: u64) {
    const TAKEN: u64 = 10;
    let _limit = Watchdog::new("a consumer departing", SCENARIO);
    let gen = PayloadGen::random(seed, MAX);
    let ring = Shared::new::<K>("consumer-departs", 64, MAX as u64);
    let mut producer = K::producer(ring.region.clone()).unwrap();
    let full = fill(&mut producer, gen, 0);
    let (taken, seed, max) = (TAKEN.to_string(), seed.to_string(), MAX.to_string());
    let args = ["consume", &ring.name, "0", &taken, &seed, &max, "default"];
    let peer = peer::<K>(&[&args[..], &[departure.then()]].concat());
    let (task, sender) = on_thread(move || {
        let mut seq = full;
        loop {
            let send = timed(|| send_one(&mut producer, gen, seq));
            match send.result {
                Ok(()) => seq += 1,
                Err(SendError::Disconnected) => return (seq, send, producer),
                Err(e) => panic!("message {seq}: {e}"),
            }
        }
    });
    let left = departure.leave(&peer, task);
    let (sent, send, mut producer) = sender.join().unwrap();
    assert_noticed(
        &send,
        left,
        &format!("send after the consumer's {departure:?}"),
    );
    departure.check_end(peer);
    // The peer's receives made room (as many messages as it took in a queue
    // of slots; in an SPSC ring, room for messages of other sizes).
    assert!(sent > full, "{sent} sent, {full} fit at first");
    assert_eq!(producer.try_send(b"x"), Err(SendError::Disconnected));

    let mut next = K::consumer(ring.region.clone()).unwrap();
    receive_verified(&mut next, gen, TAKEN, sent - TAKEN);
    assert_eq!(next.try_recv_into(&mut [0; MAX]), Err(RecvError::Empty));
    // With a consumer again, the producer sends again.
    assert_eq!(producer.try_send(b"x"), Ok(()));
}

/// A producer killed (`SIGKILL`) while blocked in a send on a full ring:
/// every message it sent is received, in order, then `Disconnected`.
fn a_producer_killed_in_send_leaves_its_messages_to_the_consumer<K: RingKind>() {
    let _limit = Watchdog::new(
        "a_producer_killed_in_send_leaves_its_messages_to_the_consumer",
        SCENARIO,
    );
    let gen = PayloadGen::random(SEED + 3, MAX);
    let ring = Shared::new::<K>("killed-in-send", 32, MAX as u64);
    let mut consumer = K::consumer(ring.region.clone()).unwrap();
    let seed = (SEED + 3).to_string();
    let args = [
        "produce",
        &ring.name,
        "0",
        "1000000",
        &seed,
        &MAX.to_string(),
    ];
    let peer = peer::<K>(&[&args[..], &["default", "hang"]].concat());
    wait_blocked(
        Task::process(peer.pid()),
        "the producer to block on the full ring",
    );
    kill_now(&peer);
    let mut received = 0;
    let mut buf = [0u8; MAX];
    let end = loop {
        match consumer.recv_into_deadline(&mut buf, deadline()) {
            Ok(n) => {
                gen.verify(received, &buf[..n])
                    .unwrap_or_else(|e| panic!("message {received}: {e}"));
                received += 1;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(end, RecvError::Disconnected, "after {received} messages");
    assert!(received >= 32, "the ring held only {received} messages");
}

/// A consumer killed while blocked in a receive: it is not reaped by calls
/// that do not wait, so our producer fills the ring; then its blocked send
/// reaps it and returns `Disconnected`. A new consumer gets every message.
fn a_consumer_killed_in_recv_loses_nothing_sent_after<K: RingKind>() {
    let _limit = Watchdog::new(
        "a_consumer_killed_in_recv_loses_nothing_sent_after",
        SCENARIO,
    );
    let seed = SEED + 5;
    let gen = PayloadGen::random(seed, MAX);
    let ring = Shared::new::<K>("killed-in-recv", 32, MAX as u64);
    let mut producer = K::producer(ring.region.clone()).unwrap();
    let args = [
        "consume",
        &ring.name,
        "0",
        "1",
        &seed.to_string(),
        &MAX.to_string(),
    ];
    let peer = peer::<K>(&[&args[..], &["default", "exit"]].concat());
    wait_blocked(
        Task::process(peer.pid()),
        "the consumer to block on the empty ring",
    );
    let killed = kill_now(&peer);
    let mut sent = 0;
    let end = loop {
        match send_one(&mut producer, gen, sent) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    let took = killed.elapsed();
    println!("{sent} messages sent, then Disconnected {took:?} after the kill");
    assert_eq!(end, SendError::Disconnected);
    assert!(took <= NOTICE + SLACK, "{took:?}");
    assert!(sent >= 32, "the ring held only {sent} messages");
    let mut next = K::consumer(ring.region.clone()).unwrap();
    receive_verified(&mut next, gen, 0, sent);
    producer.try_send(b"for the new consumer").unwrap();
}

/// A consumer killed while asleep in a receive (`Park`, in `FUTEX_WAIT`)
/// leaves nothing that costs its successor's producer a system call: once
/// a successor has attached (which reaps the dead one), a stream to it,
/// busy-polling, makes no `FUTEX_WAKE`. Before the sleepers' count was
/// repaired at reaping, the dead sleeper stayed counted for the region's
/// lifetime and every message cost a wake-up syscall.
fn a_consumer_killed_asleep_leaves_no_wake_syscall_behind<K: RingKind>() {
    let _limit = Watchdog::new(
        "a_consumer_killed_asleep_leaves_no_wake_syscall_behind",
        SCENARIO,
    );
    const COUNT: u64 = 10_000;
    const LEN: usize = 8;
    let ring = Shared::new::<K>("killed-asleep", COUNT, LEN as u64);
    let (count, seed, max) = (COUNT.to_string(), (SEED + 11).to_string(), LEN.to_string());
    let sleeper = peer::<K>(&["consume", &ring.name, "0", "1", &seed, &max, "park", "exit"]);
    wait_blocked(
        Task::process(sleeper.pid()),
        "the consumer to sleep on the empty ring",
    );
    kill_now(&sleeper);
    let stream = ["0", &count, &seed, &max];
    let busy = strategy_arg(WaitStrategy::BusyPoll);
    let successor = peer::<K>(&[&["consume", &ring.name][..], &stream, &[&busy, "exit"]].concat());
    ring.wait_attached(&successor, Role::Consumer);
    let producer =
        peer::<K>(&[&["produce", &ring.name][..], &stream, &["default", "exit"]].concat());
    let (produced, consumed) = (producer.finish(STALL), successor.finish(STALL));
    produced.assert_success();
    consumed.assert_success();
    let made = reported(&produced, "syscalls");
    println!(
        "{COUNT} messages after a sleeper's death; the producer made {made} wait-path syscalls"
    );
    // Nobody sleeps once the dead consumer is reaped: 0, but for the few
    // messages a producer may send while the successor's attach still
    // reaps.
    assert!(made < COUNT / 100, "{made} wait-path syscalls");
}

// ---------------------------------------------------------------------------
// Start order

/// A consumer that attaches after the producer started gets everything:
/// from a producer blocked on the ring it filled before any consumer came,
/// and from one that filled it and left before the consumer came.
fn a_late_consumer_gets_everything_sent_before_it_attached<K: RingKind>() {
    let _limit = Watchdog::new(
        "a_late_consumer_gets_everything_sent_before_it_attached",
        SCENARIO,
    );
    const HELD: u64 = 1000;
    let seed = SEED + 7;
    let gen = PayloadGen::random(seed, MAX);
    let (seed, max) = (seed.to_string(), MAX.to_string());

    // More than the ring holds, whatever the sizes: the producer blocks.
    let ring = Shared::new::<K>("late-blocked", HELD, MAX as u64);
    let count = (4 * HELD).to_string();
    let producer = peer::<K>(&[
        "produce", &ring.name, "0", &count, &seed, &max, "default", "exit",
    ]);
    wait_blocked(
        Task::process(producer.pid()),
        "the producer to fill the ring",
    );
    let mut consumer = K::consumer(ring.region.clone()).unwrap();
    receive_verified(&mut consumer, gen, 0, 4 * HELD);
    producer.finish(STALL).assert_success();
    let end = consumer.recv_into_deadline(&mut [0; MAX], deadline());
    assert_eq!(end, Err(RecvError::Disconnected));

    let ring = Shared::new::<K>("late-gone", HELD, MAX as u64);
    let count = HELD.to_string();
    let producer = peer::<K>(&[
        "produce", &ring.name, "0", &count, &seed, &max, "default", "exit",
    ]);
    producer.finish(STALL).assert_success();
    let mut consumer = K::consumer(ring.region.clone()).unwrap();
    receive_verified(&mut consumer, gen, 0, HELD);
    let end = consumer.recv_into_deadline(&mut [0; MAX], deadline());
    assert_eq!(end, Err(RecvError::Disconnected));
}

// ---------------------------------------------------------------------------
// Streams

/// A stream whose consumer keeps up makes no wait-path system call on
/// either side: two peers stream 200,000 verified messages with the
/// blocking calls, the consumer busy-polling, the producer with the default
/// strategy. Exactly 0 whatever the scheduling: the consumer never sleeps,
/// so no notification finds a sleeper to wake, and the ring holds the
/// whole stream, so the producer never waits.
fn a_stream_whose_consumer_keeps_up_makes_no_wait_syscall<K: RingKind>() {
    let _limit = Watchdog::new(
        "a_stream_whose_consumer_keeps_up_makes_no_wait_syscall",
        SCENARIO,
    );
    const COUNT: u64 = 200_000;
    const LEN: usize = 64;
    let ring = Shared::new::<K>("no-syscalls", COUNT, LEN as u64);
    let (count, seed, max) = (COUNT.to_string(), (SEED + 8).to_string(), LEN.to_string());
    let stream = ["0", &count, &seed, &max];
    let busy = strategy_arg(WaitStrategy::BusyPoll);
    let consumer = peer::<K>(&[&["consume", &ring.name][..], &stream, &[&busy, "exit"]].concat());
    ring.wait_attached(&consumer, Role::Consumer);
    let producer =
        peer::<K>(&[&["produce", &ring.name][..], &stream, &["default", "exit"]].concat());
    let (produced, consumed) = (producer.finish(STALL), consumer.finish(STALL));
    produced.assert_success();
    consumed.assert_success();
    println!(
        "{COUNT} messages in {:?}; wait-path syscalls: producer {}, consumer {}",
        produced.took,
        reported(&produced, "syscalls"),
        reported(&consumed, "syscalls")
    );
    assert_eq!(reported(&produced, "syscalls"), 0);
    assert_eq!(reported(&consumed, "syscalls"), 0);
}

const TEN_MILLION: u64 = 10_000_000;
/// A heavy stream's limit; it takes seconds here.
const STREAM: Duration = Duration::from_secs(600);

/// Ten million random-size messages from a forked producer to this
/// process, both with the default wait strategy and the blocking calls,
/// every byte verified; then `Disconnected` once the producer has left.
fn ten_million_messages_from_a_forked_producer<K: RingKind>() {
    let _limit = Watchdog::new("ten_million_messages_from_a_forked_producer", STREAM);
    let gen = PayloadGen::random(SEED + 9, 256);
    let layout = K::layout(1024, 256).unwrap();
    let region = Arc::new(
        RegionOptions::new()
            .layout(layout)
            .create_anonymous()
            .unwrap(),
    );
    let (syscalls_r, syscalls_w) = nix::unistd::pipe().unwrap();
    let produce = || {
        let Ok(mut producer) = K::producer(region.clone()) else {
            return 2;
        };
        let before = ipc_core::wait::syscalls();
        for seq in 0..TEN_MILLION {
            if send_one(&mut producer, gen, seq).is_err() {
                return 3;
            }
        }
        let made = ipc_core::wait::syscalls() - before;
        match nix::unistd::write(&syscalls_w, &made.to_le_bytes()) {
            Ok(8) => 0,
            _ => 4,
        }
    };
    let started = Instant::now();
    // SAFETY: the child attaches, sends from a stack buffer, writes to a
    // pipe and returns: no allocation, no lock.
    let child = unsafe { ForkedChild::fork(produce) }.unwrap();
    drop(syscalls_w);
    let mut consumer = K::consumer(region).unwrap();
    receive_verified(&mut consumer, gen, 0, TEN_MILLION);
    let end = consumer.recv_into_deadline(&mut [0; 256], deadline());
    assert_eq!(end, Err(RecvError::Disconnected));
    let status = child.wait(STALL).unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    let mut made = [0u8; 8];
    assert_eq!(nix::unistd::read(&syscalls_r, &mut made), Ok(8));
    let made = u64::from_le_bytes(made);
    println!(
        "{TEN_MILLION} messages in {:?}; the producer made {made} wait-path syscalls",
        started.elapsed()
    );
    assert_few_syscalls(made);
}

/// Ten million random-size messages from this process to a spawned
/// consumer (an unrelated program), both with the default wait strategy,
/// every byte verified there; it then sees `Disconnected`.
fn ten_million_messages_to_a_spawned_consumer<K: RingKind>() {
    let _limit = Watchdog::new("ten_million_messages_to_a_spawned_consumer", STREAM);
    let seed = SEED + 10;
    let gen = PayloadGen::random(seed, 256);
    let ring = Shared::new::<K>("ten-million", 1024, 256);
    let mut producer = K::producer(ring.region.clone()).unwrap();
    let count = TEN_MILLION.to_string();
    let stream = ["0", &count, &seed.to_string(), "256"];
    let consumer = peer::<K>(
        &[
            &["consume", &ring.name][..],
            &stream,
            &["default", "disconnected"],
        ]
        .concat(),
    );
    let started = Instant::now();
    for seq in 0..TEN_MILLION {
        send_one(&mut producer, gen, seq).unwrap_or_else(|e| panic!("message {seq}: {e}"));
    }
    drop(producer);
    let done = consumer.finish(STALL);
    done.assert_success();
    let made = reported(&done, "syscalls");
    println!(
        "{TEN_MILLION} messages in {:?}; the consumer made {made} wait-path syscalls",
        started.elapsed()
    );
    assert_few_syscalls(made);
}

/// A heavy stream's wait-path system calls are few: the consumer verifies
/// every byte, so the ring is often full or empty, and each side then
/// spins before it parks. A design that paid a wake-up per message would
/// make at least one per message; this one makes a few per thousand here
/// (more under load), far under one per ten.
fn assert_few_syscalls(made: u64) {
    assert!(made < TEN_MILLION / 10, "{made} wait-path syscalls");
}

/// Round trips of the ping-pong.
const ROUND_TRIPS: u64 = 1_000_000;
/// Most round trips of the ping-pong that may take a liveness tick or more.
const MOST_SLOW: u64 = ROUND_TRIPS / 1000;

/// A million blocking round trips with both sides parking at once
/// (`WaitStrategy::Park`), each message checked. Every call sleeps, so
/// nearly every message needs a wake-up. A lost one does not hang the
/// ping-pong: the sleeper's liveness tick wakes it 20 ms later. So a lost
/// wake-up shows as a round trip of a tick or more; the test fails if one
/// round trip in a thousand takes that long (scheduling noise on this
/// loaded VM makes a handful), and a systematic loss would also blow the
/// overall limit. The peer's sends must have found us asleep and woken us
/// (one `FUTEX_WAKE` each) often: at least one in ten, or the ping-pong did
/// not exercise the wake path at all (most do; under load, the echo can
/// arrive before we are asleep).
fn a_million_park_at_once_round_trips_lose_no_wake_up<K: RingKind>() {
    let _limit = Watchdog::new("a_million_park_at_once_round_trips_lose_no_wake_up", STREAM);
    let ping = Shared::new::<K>("ping", 4, 8);
    let pong = Shared::new::<K>("pong", 4, 8);
    let mut producer = K::producer(ping.region.clone()).unwrap();
    let mut consumer = K::consumer(pong.region.clone()).unwrap();
    producer.set_wait_strategy(WaitStrategy::Park);
    consumer.set_wait_strategy(WaitStrategy::Park);
    let count = ROUND_TRIPS.to_string();
    let echo = peer::<K>(&["echo", &ping.name, &pong.name, &count, "park"]);
    let limit = Instant::now() + STREAM;
    let started = Instant::now();
    let mut slow = 0u64;
    let mut slowest = Duration::ZERO;
    let mut slow_ones = Vec::new();
    for i in 0..ROUND_TRIPS {
        let sent = Instant::now();
        producer
            .send_deadline(&i.to_le_bytes(), limit)
            .unwrap_or_else(|e| panic!("ping {i}: {e}"));
        let got = consumer.recv_deadline_with(limit, number);
        assert_eq!(got, Ok(i), "pong {i}");
        let took = sent.elapsed();
        slowest = slowest.max(took);
        if took >= LIVENESS_TICK {
            slow += 1;
            if slow_ones.len() < 20 {
                slow_ones.push((i, took));
            }
            // Fail now rather than after the whole million.
            assert!(
                slow <= MOST_SLOW,
                "round trip {i}: {slow} took a tick or more: {slow_ones:?}"
            );
        }
    }
    let took = started.elapsed();
    let done = echo.finish(STALL);
    done.assert_success();
    let wakes = reported(&done, "send_syscalls");
    println!(
        "{ROUND_TRIPS} round trips in {took:?} ({:?} each); {slow} took a liveness tick or more \
         (slowest {slowest:?}); the peer's sends made {wakes} wake-ups",
        took / ROUND_TRIPS as u32
    );
    println!("the first slow ones (round trip, time): {slow_ones:?}");
    assert!(wakes >= ROUND_TRIPS / 10, "{wakes} wake-ups");
}
