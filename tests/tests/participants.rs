//! Participants and their liveness across real processes: a participant is
//! alive exactly while its process holds its lock (see
//! `ipc_core::participants`), whatever pid its entry names, whether it is
//! stopped, and whichever pid namespace it lives in.

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::layout::HEADER_SIZE;
use ipc_core::mpmc::{self, Consumer, Counters, Producer, RecvError};
use ipc_core::participants::{table_size, Entry, Role, SLOT_SIZE};
use ipc_core::{Region, RegionOptions};
use ipc_tests::name::ShmName;
use ipc_tests::privileged;
use ipc_tests::spawn::SpawnedChild;
use ipc_tests::tagged::{self, TAGGED_LEN};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

const PEER: &str = env!("CARGO_BIN_EXE_mpmc-peer");
/// Longest any wait for a peer may last.
const STALL: Duration = Duration::from_secs(30);

fn queue_options() -> RegionOptions {
    RegionOptions::new().layout(mpmc::layout(8, TAGGED_LEN as u64).unwrap())
}

fn shm_queue(name: &ShmName) -> Arc<Region> {
    Arc::new(queue_options().create_shm(name).unwrap())
}

fn peer(args: &[&str]) -> SpawnedChild {
    SpawnedChild::run(PEER, args)
}

/// The number after `prefix` in `line`.
fn number_after(line: &str, prefix: &str) -> u64 {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected `{prefix}N`, got {line:?}"))
}

/// The entry the table lists for a participant that registered as `pid`.
fn entry_of(region: &Region, pid: u32) -> Option<Entry> {
    region.participants().into_iter().find(|e| e.pid == pid)
}

/// Waits up to `limit` until `check` holds for what the table says of
/// `pid`'s entry (`None` once reaped).
fn wait_for_entry(
    region: &Region,
    pid: u32,
    limit: Duration,
    check: impl Fn(Option<Entry>) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !check(entry_of(region, pid)) {
        assert!(
            Instant::now() < deadline,
            "after {limit:?}, pid {pid}'s entry is {:?}",
            entry_of(region, pid)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The state letter of process `pid` in `/proc/PID/stat` (`T` when
/// stopped, `Z` for a zombie).
fn state_of(pid: Pid) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').expect("a command name in parentheses") + 1..];
    after_name.trim_start().chars().next().expect("a state")
}

/// Claim: "a participant killed with SIGKILL is dead, already while it is
/// an unreaped zombie; a blocked peer reaps it and gets `Disconnected`."
#[test]
fn a_participant_killed_with_sigkill_is_dead_as_a_zombie_and_then_reaped() {
    let name = ShmName::new("killed");
    let region = shm_queue(&name);
    let mut holder = peer(&["attach", &name, "producer"]);
    let pid = number_after(&holder.read_line(STALL), "attached ") as u32;
    assert_eq!(pid, holder.pid().as_raw() as u32);
    let entry = entry_of(&region, pid).expect("the peer is listed");
    assert_eq!((entry.role, entry.alive), (Some(Role::Producer), true));

    kill(holder.pid(), Signal::SIGKILL).unwrap();
    holder.wait_ended(STALL);
    assert_eq!(state_of(holder.pid()), 'Z');
    let entry = entry_of(&region, pid).expect("not reaped yet: nobody looked");
    assert!(!entry.alive, "a zombie's lock is gone: {entry:?}");

    // A consumer waiting for the dead producer reaps it on a liveness tick.
    let mut consumer = Consumer::attach(region.clone()).unwrap();
    let started = Instant::now();
    assert!(matches!(
        consumer.recv_timeout(STALL).map(|m| m.len()),
        Err(RecvError::Disconnected)
    ));
    eprintln!("disconnected {:?} after attaching", started.elapsed());
    assert_eq!(entry_of(&region, pid), None);
    let done = holder.finish(STALL);
    assert_eq!(done.status.signal(), Some(libc::SIGKILL));
}

/// Word `byte / 8` of participant slot `slot`, for writing a forged entry.
fn table_word(region: &Region, slot: u64, byte: u64) -> &AtomicU64 {
    let layout = region.layout();
    let back = layout.data_offset - HEADER_SIZE;
    assert_eq!(
        back,
        table_size(layout.participants),
        "the table ends where the data starts"
    );
    assert!(slot < layout.participants && byte % 8 == 0 && byte < SLOT_SIZE);
    // SAFETY: the table lies in the mapping from HEADER_SIZE to data_offset,
    // which is where `data_ptr` points, so stepping back `back` bytes from it
    // stays in the mapping; slots are 64-aligned and `byte` is 8-aligned and
    // inside one. Other processes may write it: only atomics touch it.
    unsafe {
        let table = region.data_ptr().as_ptr().sub(back as usize);
        &*(table.add((slot * SLOT_SIZE + byte) as usize) as *const AtomicU64)
    }
}

/// Writes an entry in participant slot `slot` that says `identity`'s
/// process registered there as `role`, as `ipc_core::participants` lays it
/// out: `generation << 16 | role << 8 | LIVE` at byte 0, the pid at 8, the
/// start time at 16, the pid namespace at 24. Nobody takes its lock.
fn forge_entry(region: &Region, slot: u64, role: Role, identity: &Entry) {
    const LIVE: u64 = 1;
    let role = match role {
        Role::Producer => 1,
        _ => 2,
    };
    // SAFETY: the pid shares word 1 of the slot (table_word checks it) with
    // a reserved u32 above it; an AtomicU32 view of its low half is aligned.
    let pid = unsafe { &*(table_word(region, slot, 8) as *const AtomicU64 as *const AtomicU32) };
    // Relaxed: published by the Release store of the word, as registering does.
    pid.store(identity.pid, Ordering::Relaxed);
    table_word(region, slot, 16).store(identity.start_time, Ordering::Relaxed);
    table_word(region, slot, 24).store(identity.pid_namespace, Ordering::Relaxed);
    // Release: pairs with the Acquire loads of the word by readers of the table.
    table_word(region, slot, 0).store(7 << 16 | role << 8 | LIVE, Ordering::Release);
}

/// The stamp of queue slot `index` (see `ipc_core::mpmc`'s layout).
fn stamp_word(region: &Region, index: u64) -> &AtomicU64 {
    let offset = mpmc::CONTROL_SIZE + index * mpmc::slot_stride(region.layout().max_message);
    assert!(offset + 8 <= region.data_len());
    // SAFETY: a slot's first word, inside the data area and 8-aligned; only
    // atomics touch it.
    unsafe { &*(region.data_ptr().as_ptr().add(offset as usize) as *const AtomicU64) }
}

/// Claim: "a participant is alive when its lock is held, never because of
/// the pid its entry names": an entry that names this very (live) process,
/// with its true start time and pid namespace, or pid 1, is dead when
/// nobody holds its lock, and a queue stuck behind a slot it 'holds' reaps
/// it; a live participant whose entry names a pid that does not exist stays
/// alive.
#[test]
fn entries_are_alive_by_their_lock_whatever_pid_they_name() {
    let region = Arc::new(queue_options().create_anonymous().unwrap());
    let mut consumer = Consumer::attach(region.clone()).unwrap();
    let me = region.participants()[0];
    assert_eq!((me.pid, me.alive), (std::process::id(), true));
    assert_ne!(me.start_time, 0);

    // Entry 10 impersonates this process perfectly; entry 11 names pid 1.
    let init = Entry { pid: 1, ..me };
    forge_entry(&region, 10, Role::Producer, &me);
    forge_entry(&region, 11, Role::Producer, &init);
    let listed = region.participants();
    let forged: Vec<_> = listed.iter().filter(|e| e.index >= 10).collect();
    assert_eq!(forged.len(), 2, "{listed:?}");
    for entry in &forged {
        assert!(!entry.alive, "nobody holds its lock: {entry:?}");
    }
    assert_eq!(
        (forged[0].pid, forged[0].start_time),
        (me.pid, me.start_time)
    );
    assert!(listed[0].alive);

    // Slot 0 of the queue is being written by entry 10 (holder = index + 1).
    const WRITING: u64 = 1 << 16;
    stamp_word(&region, 0).store(WRITING | 11, Ordering::Release);
    let mut producer = Producer::attach(region.clone()).unwrap();
    let mut msg = [0u8; TAGGED_LEN];
    tagged::fill(0, 0, &mut msg);
    producer.send_timeout(&msg, STALL).unwrap();
    // The consumer, stuck behind slot 0, finds its holder dead, skips the
    // slot and gets the message behind it.
    let got = consumer.recv_timeout(STALL).unwrap();
    assert_eq!(tagged::read(&got).map(|t| t.seq), Ok(0));
    drop(got);
    assert_eq!(
        consumer.counters(),
        Counters {
            skipped: 1,
            lost: 0
        }
    );
    // Entry 11 held nothing: a blocked call's liveness tick reaps it.
    let deadline = Instant::now() + STALL;
    while region.participants().iter().any(|e| e.index >= 10) {
        assert!(Instant::now() < deadline, "{:?}", region.participants());
        assert!(matches!(
            consumer
                .recv_timeout(Duration::from_millis(50))
                .map(|m| m.len()),
            Err(RecvError::Timeout)
        ));
    }
    // The live producer's entry now names a pid nobody has: still alive,
    // never reaped, and its messages still flow.
    let producer_entry = region
        .participants()
        .into_iter()
        .find(|e| e.role == Some(Role::Producer))
        .unwrap();
    // SAFETY: as in `forge_entry`.
    let pid = unsafe {
        &*(table_word(&region, producer_entry.index as u64, 8) as *const AtomicU64
            as *const AtomicU32)
    };
    pid.store(0x3fff_fff0, Ordering::Relaxed);
    assert!(std::fs::metadata("/proc/1073741808").is_err());
    let entry = entry_of(&region, 0x3fff_fff0).expect("still listed");
    assert!(entry.alive, "{entry:?}");
    assert!(matches!(
        consumer
            .recv_timeout(Duration::from_millis(100))
            .map(|m| m.len()),
        Err(RecvError::Timeout)
    ));
    tagged::fill(0, 1, &mut msg);
    producer.send_timeout(&msg, STALL).unwrap();
    let got = consumer.recv_timeout(STALL).unwrap();
    assert_eq!(tagged::read(&got).map(|t| t.seq), Ok(1));
    drop(got);
    assert!(entry_of(&region, 0x3fff_fff0).is_some_and(|e| e.alive));
}

/// Claim: "a stopped process is alive": a producer stopped (`SIGSTOP`)
/// between claiming a slot and publishing it stays listed alive, and a
/// consumer blocked behind its slot for many liveness ticks times out
/// instead of taking it over; continued, it publishes and the message
/// arrives whole. Killed (`SIGKILL`), it is dead at once and its slot is
/// skipped.
#[test]
fn a_stopped_participant_is_alive_and_keeps_its_slot() {
    let name = ShmName::new("stopped");
    let region = shm_queue(&name);
    let mut consumer = Consumer::attach(region.clone()).unwrap();
    let mut holder = peer(&["hold-grant", &name, "0", "1"]);
    let pid = holder.pid();
    assert_eq!(number_after(&holder.read_line(STALL), "holding "), 1);
    let first = consumer.recv_timeout(STALL).unwrap();
    assert_eq!(tagged::read(&first).map(|t| t.seq), Ok(0));
    drop(first);

    kill(pid, Signal::SIGSTOP).unwrap();
    let deadline = Instant::now() + STALL;
    while state_of(pid) != 'T' {
        assert!(Instant::now() < deadline, "the peer never stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
    let waited = Duration::from_millis(300);
    let started = Instant::now();
    let outcome = consumer.recv_timeout(waited).map(|m| m.to_vec());
    assert_eq!(outcome, Err(RecvError::Timeout));
    assert!(started.elapsed() >= waited);
    assert_eq!(state_of(pid), 'T', "the peer must stay stopped throughout");
    let entry = entry_of(&region, pid.as_raw() as u32).expect("still listed");
    assert!(entry.alive, "a stopped process is alive: {entry:?}");
    assert_eq!(consumer.counters(), Counters::default());

    kill(pid, Signal::SIGCONT).unwrap();
    kill(pid, Signal::SIGUSR1).unwrap();
    assert_eq!(number_after(&holder.read_line(STALL), "committed "), 1);
    let second = consumer.recv_timeout(STALL).unwrap();
    assert_eq!(
        tagged::read(&second).map(|t| t.seq),
        Ok(1),
        "committed after the stop"
    );
    drop(second);
    assert_eq!(number_after(&holder.read_line(STALL), "holding "), 2);

    kill(pid, Signal::SIGKILL).unwrap();
    wait_for_entry(&region, pid.as_raw() as u32, STALL, |e| {
        e.is_none_or(|e| !e.alive)
    });
    assert!(matches!(
        consumer.recv_timeout(STALL).map(|m| m.len()),
        Err(RecvError::Disconnected)
    ));
    assert_eq!(
        consumer.counters(),
        Counters {
            skipped: 1,
            lost: 0
        }
    );
    holder.finish(STALL);
}

/// Whether this process may make pid namespaces (root, here and in CI).
fn can_unshare() -> bool {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() }) == 0
}

/// The inode of this process's pid namespace.
fn my_pid_namespace() -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata("/proc/self/ns/pid").unwrap())
}

/// Claim: "liveness is right across pid namespaces (containers sharing
/// `/dev/shm`)": a producer running as pid 1 of a pid namespace of its own
/// is listed alive with the pid it has there (meaningless here, where pid 1
/// is another, live process) and its own namespace, and is dead once
/// killed.
#[test]
fn a_participant_in_another_pid_namespace_is_judged_by_its_lock() {
    if !privileged::runs(
        can_unshare(),
        "a_participant_in_another_pid_namespace_is_judged_by_its_lock: needs root to make a pid namespace",
    ) {
        return;
    }
    let name = ShmName::new("pidns");
    let region = shm_queue(&name);
    let mut consumer = Consumer::attach(region.clone()).unwrap();
    // The wrapper, like every mpmc-peer, dies with this test's thread, and
    // its inner process with it.
    let mut wrapper = peer(&["in-new-pid-namespace", "attach", &name, "producer"]);
    let (mut inner, mut recorded) = (None, None);
    while inner.is_none() || recorded.is_none() {
        let line = wrapper.read_line(STALL);
        if let Some(why) = line.strip_prefix("no-pid-namespace ") {
            privileged::runs(false, &format!("no pid namespace here: {why}"));
            return;
        } else if line.starts_with("inner-pid ") {
            inner = Some(number_after(&line, "inner-pid ") as i32);
        } else {
            recorded = Some(number_after(&line, "attached ") as u32);
        }
    }
    let (inner, recorded) = (Pid::from_raw(inner.unwrap()), recorded.unwrap());
    assert_eq!(
        recorded, 1,
        "the first process of a new pid namespace is its pid 1"
    );
    let entry = entry_of(&region, 1).expect("listed under the pid it has in its namespace");
    assert!(entry.alive, "{entry:?}");
    assert_eq!(entry.role, Some(Role::Producer));
    assert_ne!(entry.pid_namespace, my_pid_namespace());
    assert_ne!(entry.pid_namespace, 0);
    // Its own start time, not that of this namespace's pid 1 (which it
    // would read from `/proc/1/stat` through the outer `/proc` mount).
    assert_eq!(entry.start_time, start_time_of(inner.as_raw()));
    assert_ne!(entry.start_time, start_time_of(1));
    // Pid 1 here is a live process too, but not this one: a pid-based check
    // would keep the entry alive after the peer dies.
    assert_ne!(inner.as_raw(), 1);
    assert!(std::path::Path::new("/proc/1").exists());

    kill(inner, Signal::SIGKILL).unwrap();
    wait_for_entry(&region, 1, STALL, |e| e.is_none_or(|e| !e.alive));
    assert!(matches!(
        consumer.recv_timeout(STALL).map(|m| m.len()),
        Err(RecvError::Disconnected)
    ));
    assert_eq!(entry_of(&region, 1), None, "reaped");
    let status = wrapper.wait_ended(STALL);
    assert!(matches!(status, WaitStatus::Exited(_, 137)), "{status:?}");
}

/// Field 22 of `/proc/PID/stat` (counted after the command's last `)`).
fn start_time_of(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields = &stat[stat.rfind(')').unwrap() + 2..];
    fields.split(' ').nth(19).unwrap().parse().unwrap()
}
