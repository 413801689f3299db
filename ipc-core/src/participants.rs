//! Who is attached to a region, and whether they are still alive.
//!
//! Every ring handle is a *participant*: it registers in a table in the
//! region when it attaches and leaves it when dropped. A process that dies
//! leaves its entries behind; anyone may then *reap* them (after the ring
//! kind has recovered whatever the dead participant held).
//!
//! # Deciding death: a lock per participant
//! Each participant holds an open-file-description lock (`F_OFD_SETLK`) on
//! one byte of the region's file (byte [`LOCK_BASE`] + its slot), taken on
//! an open file description of its own (the region's fd reopened through
//! `/proc/self/fd`). The kernel releases the lock when the last fd of that
//! description closes, which a dying process does whatever killed it. So:
//!
//! - **alive** = the entry is registered *and* its lock is held. Probing
//!   (`F_OFD_GETLK` on the region's fd) is one syscall, about 0.6 µs here.
//! - A recycled pid cannot keep a dead participant alive, nor make a live
//!   one look dead: the decision never looks at pids. The entry records pid,
//!   start time and pid namespace for people (`ipc ls`), not for deciding.
//! - **Pid namespaces**: locks belong to the file, not to pids, so processes
//!   in different containers sharing `/dev/shm` judge each other correctly.
//! - A **stopped** (`SIGSTOP`) process keeps its fds, so it stays alive; a
//!   **zombie** has closed them, so it is dead.
//! - **fork**: a child inherits the parent's fds, and with them the lock's
//!   description; were it to keep them, a dead parent would look alive as
//!   long as the child lives. A `pthread_atfork` handler closes every
//!   participant fd in the child (see `sys::close_in_forked_children`), and
//!   a handle dropped in the child does nothing.
//!
//! The alternatives weighed: pid + start time (`/proc/PID/stat`, ~8 µs a
//! check here, wrong across pid namespaces, and a start time is read from
//! a clock that time namespaces shift); `pidfd_open` (one fd per watched
//! process per watcher, and still pid-namespace bound); a robust futex
//! (glibc owns each thread's robust list). Measured with a C probe on this
//! machine (Linux 6.18, Xeon): lock probe 0.65 µs, `/proc/PID/stat` read
//! 8.0 µs, register (reopen + lock) 8 µs; a participant costs one fd.
//!
//! # The table
//! `count` slots of 64 bytes after the region header. A slot's `word` holds
//! `generation << 16 | role << 8 | state`; a participant is named by a
//! *token*, `generation << 16 | index`, which goes stale when the slot is
//! reused (the generation grows at each registration).
//!
//! | state | meaning | written by | lock held by |
//! |---|---|---|---|
//! | `FREE` | no participant | its last participant (leaving) or a reaper | nobody (or a registrant, briefly) |
//! | `LIVE` | registered | a registrant holding the slot's lock | the participant; free: it is dead |
//! | `REAPING` | dead, being recovered | a reaper holding the slot's lock (a CAS from `LIVE`) | the reaper; free: the reaper is dead |
//!
//! Registering takes the slot's lock *before* writing `LIVE`, and leaving
//! writes `FREE` *before* dropping it, so a `LIVE` entry whose lock is free
//! belongs to a dead process. A reaper likewise takes the dead slot's lock
//! *before* writing `REAPING` and frees the slot *before* dropping it, so a
//! `REAPING` entry whose lock is free belongs to a reaper that died
//! mid-reap: the next reaper takes the lock and the reap over, and redoes
//! the recovery (which the ring kinds make idempotent: it repairs only what
//! still names the dead participant). Until then the entry counts as
//! present (`Table::has_entry`) and is listed, dead. A registrant that
//! gets the lock of a slot that is not `FREE` (a dead entry not reaped yet)
//! lets go and tries the next slot. Under `cfg(ipc_core_loom)` the lock is
//! a flag that the model's "kernel" clears when a participant dies (a
//! model's death).

use core::ptr::NonNull;

pub use crate::layout::table::{table_size, MAX_PARTICIPANTS, SLOT_SIZE};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// First byte of the region's file locked by participants (slot `i` locks
/// byte `LOCK_BASE + i`): far past any data, so no lock ever covers bytes
/// someone reads, and locks past the end of a file are allowed.
pub const LOCK_BASE: u64 = 1 << 40;

const FREE: u64 = 0;
const LIVE: u64 = 1;
const REAPING: u64 = 2;

/// What a participant is attached as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Sends messages.
    Producer,
    /// Receives messages.
    Consumer,
}

impl Role {
    fn to_u64(self) -> u64 {
        match self {
            Role::Producer => 1,
            Role::Consumer => 2,
        }
    }

    fn from_u64(value: u64) -> Option<Role> {
        match value {
            1 => Some(Role::Producer),
            2 => Some(Role::Consumer),
            _ => None,
        }
    }
}

/// One participant's entry, as it lies in shared memory.
#[repr(C, align(64))]
pub(crate) struct Slot {
    /// `generation << 16 | role << 8 | state`.
    word: AtomicU64,
    /// Pid in the registering process's pid namespace (for people).
    pid: AtomicU32,
    reserved_0: AtomicU32,
    /// Start time of that process in clock ticks after boot (for people).
    start_time: AtomicU64,
    /// Inode of that process's pid namespace (for people).
    pid_namespace: AtomicU64,
    reserved: [AtomicU64; 3],
    /// This participant's threads counted in its ring's signals' sleepers
    /// (see `wait::Mark`), so a reaper can uncount a dead one's. Not reset
    /// when the slot is reused: a count left by a previous registration's
    /// thread is still owed to the signal.
    sleeping: AtomicU64,
}

#[cfg(not(ipc_core_loom))] // loom atomics are larger
const _: () = assert!(core::mem::size_of::<Slot>() as u64 == SLOT_SIZE);

impl Slot {
    #[cfg(ipc_core_loom)]
    pub(crate) fn new() -> Slot {
        Slot {
            word: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            reserved_0: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            pid_namespace: AtomicU64::new(0),
            reserved: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            sleeping: AtomicU64::new(0),
        }
    }
}

/// Names one registration of one slot: `generation << 16 | index`. Never 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Token(pub(crate) u64);

impl Token {
    /// The slot's index.
    pub(crate) fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    fn generation(self) -> u64 {
        self.0 >> 16
    }
}

/// Who a participant is, as recorded for people.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) pid: u32,
    pub(crate) start_time: u64,
    pub(crate) pid_namespace: u64,
}

impl Identity {
    /// This process, as it sees itself.
    #[cfg(not(ipc_core_loom))]
    pub(crate) fn of_this_process() -> Identity {
        let pid = crate::sys::current_pid();
        Identity {
            pid,
            start_time: crate::sys::own_proc_stat().map_or(0, |stat| stat.start_time),
            pid_namespace: crate::sys::pid_namespace(),
        }
    }
}

/// A registered participant: its token and the lock that keeps it alive.
/// Leave with [`Table::leave`]; dropping it without leaving is a death.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) token: Token,
    pub(crate) hold: Hold,
}

/// A snapshot of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Slot index.
    pub index: usize,
    /// What it is attached as (`None` for a value no correct peer writes).
    pub role: Option<Role>,
    /// Whether its process is alive (its lock is held).
    pub alive: bool,
    /// Pid in the pid namespace it registered from.
    pub pid: u32,
    /// Its process's start time, in clock ticks after boot.
    pub start_time: u64,
    /// Inode of its process's pid namespace.
    pub pid_namespace: u64,
}

/// A dead participant's slot, claimed by one reaper until it is freed: the
/// reaper holds the slot's lock meanwhile, so its own death frees the
/// claim for the next reaper.
#[derive(Debug)]
#[must_use = "a reaped slot stays unusable until `Table::finish_reap`"]
pub(crate) struct Reaping {
    pub(crate) index: usize,
    /// What the dead participant was attached as (`None` for a value no
    /// correct peer writes).
    pub(crate) role: Option<Role>,
    /// The slot's word while reaped (`REAPING`).
    word: u64,
    /// The word as found: `LIVE`, or `REAPING` taken over from a dead reaper.
    found: u64,
    /// The slot's lock, held until the slot is freed or given back.
    hold: Hold,
}

impl Reaping {
    /// The token of the participant being reaped.
    pub(crate) fn token(&self) -> Token {
        Token(self.word >> 16 << 16 | self.index as u64)
    }

    /// The reaper's process dies mid-reap: the kernel releases the lock,
    /// nothing else runs. For tests and loom models.
    #[cfg(test)]
    pub(crate) fn die(self) {
        self.hold.die();
    }
}

/// Why registering failed.
#[derive(Debug)]
#[cfg_attr(ipc_core_loom, allow(dead_code))] // loom models only look at is_ok
pub(crate) enum RegisterError {
    /// Every slot is taken (by live participants, or dead ones not reaped).
    Full,
    /// Taking a lock failed for another reason than contention.
    Lock(nix::errno::Errno),
}

/// The participant table of a region, as one process sees it.
#[derive(Clone, Copy)]
pub(crate) struct Table {
    slots: NonNull<Slot>,
    count: usize,
}

// SAFETY: a `Table` is an address and a count; the slots are atomics shared
// between processes by design. Whoever builds it keeps the memory alive.
unsafe impl Send for Table {}
// SAFETY: as above.
unsafe impl Sync for Table {}

impl Table {
    /// The table of `count` slots at `slots`.
    ///
    /// # Safety
    /// `slots` points to `count` slots (zeroed or written by this module)
    /// that stay valid while the table is used, and `count` is at most
    /// [`MAX_PARTICIPANTS`].
    pub(crate) unsafe fn new(slots: NonNull<Slot>, count: usize) -> Table {
        debug_assert!(count as u64 <= MAX_PARTICIPANTS);
        Table { slots, count }
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Slot `index`, or `None` when out of range (an index read from shared
    /// memory is checked here).
    pub(crate) fn slot(&self, index: usize) -> Option<&Slot> {
        // SAFETY: in bounds; slots hold only atomics, which other processes
        // may write concurrently.
        (index < self.count).then(|| unsafe { &*self.slots.as_ptr().add(index) })
    }

    /// The sleeping marks of slot `index` (see `wait::Mark`), or `None`
    /// when out of range. Only a reaper holding the slot's `REAPING` claim
    /// may clear another participant's marks.
    pub(crate) fn sleeping(&self, index: usize) -> Option<&AtomicU64> {
        self.slot(index).map(|slot| &slot.sleeping)
    }

    /// Registers a participant in the first free slot whose lock it can take.
    pub(crate) fn register(
        &self,
        role: Role,
        identity: Identity,
        liveness: &Liveness,
    ) -> Result<Member, RegisterError> {
        for index in 0..self.count {
            let slot = self.slot(index).expect("index below count");
            // Relaxed: a hint; the slot is re-read once its lock is held.
            if slot.word.load(Ordering::Relaxed) & 0xff != FREE {
                continue;
            }
            let Some(hold) = liveness.hold(index).map_err(RegisterError::Lock)? else {
                continue; // someone else is registering here
            };
            // Acquire: pairs with the Release store of FREE by the last
            // participant or reaper of this slot.
            let word = slot.word.load(Ordering::Acquire);
            if word & 0xff != FREE {
                continue; // a dead entry not reaped yet; `hold` drops
            }
            let generation = (word >> 16).wrapping_add(1) & 0xffff_ffff_ffff;
            let generation = generation.max(1);
            // Relaxed: published by the Release CAS below.
            slot.pid.store(identity.pid, Ordering::Relaxed);
            slot.start_time
                .store(identity.start_time, Ordering::Relaxed);
            slot.pid_namespace
                .store(identity.pid_namespace, Ordering::Relaxed);
            let live = generation << 16 | role.to_u64() << 8 | LIVE;
            // Release: pairs with the Acquire loads of `word` in `is_alive`
            // and `entries`, which then see the identity. A CAS, although
            // holding the lock makes us the only registrant: a hostile
            // writer could have changed the word since.
            if slot
                .word
                .compare_exchange(word, live, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Member {
                    token: Token(generation << 16 | index as u64),
                    hold,
                });
            }
        }
        Err(RegisterError::Full)
    }

    /// Leaves the table: the slot is free, then the lock is dropped (in
    /// that order, so a `LIVE` entry without a lock is always a dead one).
    pub(crate) fn leave(&self, member: Member) {
        self.free(&member);
        drop(member.hold);
    }

    /// Marks `member`'s slot free; its lock is dropped after (with it).
    pub(crate) fn free(&self, member: &Member) {
        if let Some(slot) = self.slot(member.token.index()) {
            // Acquire on failure is not needed: a word that changed means a
            // reaper (wrongly, or a hostile writer) took the slot; leave it.
            let word = slot.word.load(Ordering::Relaxed);
            if word >> 16 == member.token.generation() && word & 0xff == LIVE {
                // Release: pairs with the Acquire load in `register` of the
                // next registrant of this slot.
                let _ = slot.word.compare_exchange(
                    word,
                    word & !0xffff | FREE,
                    Ordering::Release,
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Whether the participant `token` names is registered and alive.
    pub(crate) fn is_alive(&self, token: Token, liveness: &Liveness) -> bool {
        let Some(slot) = self.slot(token.index()) else {
            return false;
        };
        // Acquire: pairs with the Release CAS in `register`.
        let word = slot.word.load(Ordering::Acquire);
        word & 0xff == LIVE && word >> 16 == token.generation() && liveness.is_held(token.index())
    }

    /// Claims slot `index` for reaping if it holds a participant that is
    /// dead (`LIVE` without its lock) or a reap whose reaper died
    /// (`REAPING` without its lock); `None` if it is free, alive, or being
    /// reaped by a live reaper. The claim is the slot's lock, taken for the
    /// reap's duration. The caller recovers what the participant held
    /// (again, for a reap taken over: recovery is idempotent), then calls
    /// [`finish_reap`](Self::finish_reap).
    pub(crate) fn start_reap(&self, index: usize, liveness: &Liveness) -> Option<Reaping> {
        let slot = self.slot(index)?;
        // Relaxed: a first look, to probe only entries worth it; the word
        // is acquired again once the lock is ours.
        let word = slot.word.load(Ordering::Relaxed);
        if !matches!(word & 0xff, LIVE | REAPING) || liveness.is_held(index) {
            return None;
        }
        // Lock free, so its holder is dead; now ours, no other reaper (or
        // registrant) can act on the slot. An error is no proof of death.
        let hold = liveness.hold(index).ok()??;
        // Acquire: pairs with the Release CAS in `register`: what the dead
        // participant published before registering is visible. (A dead
        // reaper's repairs are CASes on the ring's words, which recovery
        // reads again.)
        let found = slot.word.load(Ordering::Acquire);
        let reaping = found & !0xff | REAPING;
        match found & 0xff {
            // Relaxed: the load above acquired; a failed CAS (a hostile
            // writer) reaps nothing.
            LIVE => slot
                .word
                .compare_exchange(found, reaping, Ordering::Relaxed, Ordering::Relaxed)
                .ok()?,
            REAPING => found,
            _ => return None, // freed meanwhile (by a reaper now dead)
        };
        Some(Reaping {
            index,
            role: Role::from_u64(found >> 8 & 0xff),
            word: reaping,
            found,
            hold,
        })
    }

    /// Gives a slot claimed for reaping back as it was, dead and unreaped.
    pub(crate) fn unstart_reap(&self, reaping: Reaping) {
        if let Some(slot) = self.slot(reaping.index) {
            // Relaxed: nothing was done under the claim.
            let _ = slot.word.compare_exchange(
                reaping.word,
                reaping.found,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        drop(reaping.hold); // after the word: see `leave`
    }

    /// Frees a reaped slot, once whatever its participant held is
    /// recovered; then lets go of its lock (as `leave` does, in that order,
    /// so the next registrant finds the slot free).
    pub(crate) fn finish_reap(&self, reaping: Reaping) {
        if let Some(slot) = self.slot(reaping.index) {
            // Release: pairs with the Acquire load in `register`: the
            // recovery happens before the slot is reused.
            let _ = slot.word.compare_exchange(
                reaping.word,
                reaping.word & !0xffff | FREE,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
        drop(reaping.hold);
    }

    /// Whether any entry of `role` is registered, alive or dead but not yet
    /// reaped. No syscall.
    pub(crate) fn has_entry(&self, role: Role) -> bool {
        (0..self.count).any(|index| {
            let slot = self.slot(index).expect("index below count");
            // Acquire: pairs with the Release CAS in `register` (and the
            // Release frees in `free` and `finish_reap`).
            let word = slot.word.load(Ordering::Acquire);
            matches!(word & 0xff, LIVE | REAPING) && word >> 8 & 0xff == role.to_u64()
        })
    }

    /// Reaps every dead entry of `role`, running `recover` on each before
    /// it is freed. Returns how many were reaped. A lock probe per entry of
    /// that role: for slow paths only.
    pub(crate) fn reap_dead(
        &self,
        role: Role,
        liveness: &Liveness,
        mut recover: impl FnMut(&Reaping),
    ) -> usize {
        let mut reaped = 0;
        for index in 0..self.count {
            let slot = self.slot(index).expect("index below count");
            // Relaxed: a first look; `start_reap` acquires what it claims.
            let word = slot.word.load(Ordering::Relaxed);
            if !matches!(word & 0xff, LIVE | REAPING) || word >> 8 & 0xff != role.to_u64() {
                continue;
            }
            if let Some(reaping) = self.start_reap(index, liveness) {
                recover(&reaping);
                self.finish_reap(reaping);
                reaped += 1;
            }
        }
        reaped
    }

    /// A snapshot of every registered entry, dead or alive; one being
    /// reaped is dead (its lock, if held, is its reaper's).
    pub(crate) fn entries(&self, liveness: &Liveness) -> Vec<Entry> {
        (0..self.count)
            .filter_map(|index| {
                let slot = self.slot(index)?;
                // Acquire: pairs with the Release CAS in `register`.
                let word = slot.word.load(Ordering::Acquire);
                let state = word & 0xff;
                matches!(state, LIVE | REAPING).then(|| Entry {
                    index,
                    role: Role::from_u64(word >> 8 & 0xff),
                    alive: state == LIVE && liveness.is_held(index),
                    // Relaxed: ordered by the Acquire load of `word`.
                    pid: slot.pid.load(Ordering::Relaxed),
                    start_time: slot.start_time.load(Ordering::Relaxed),
                    pid_namespace: slot.pid_namespace.load(Ordering::Relaxed),
                })
            })
            .collect()
    }
}

pub(crate) use liveness::{Hold, Liveness};

/// A participant table on the heap, standing in for a region's in loom
/// models.
#[cfg(ipc_core_loom)]
pub(crate) struct HeapTable {
    slots: Box<[Slot]>,
    locks: Box<[loom::sync::atomic::AtomicBool]>,
}

#[cfg(ipc_core_loom)]
impl HeapTable {
    /// A table of `count` free slots.
    pub(crate) fn new(count: usize) -> HeapTable {
        HeapTable {
            slots: (0..count).map(|_| Slot::new()).collect(),
            locks: liveness::flags(count),
        }
    }

    /// The table and its liveness; valid while `self` lives.
    pub(crate) fn members(&self) -> Members {
        // SAFETY: `count` slots owned by `self`, which the models keep alive
        // for as long as they use the table.
        let table = unsafe { Table::new(NonNull::from(&self.slots[0]), self.slots.len()) };
        Members {
            table,
            liveness: Liveness::new(&self.locks),
        }
    }
}

/// A region's table with the liveness to judge its entries: what ring
/// handles attach through.
#[derive(Clone, Copy)]
pub(crate) struct Members {
    pub(crate) table: Table,
    pub(crate) liveness: Liveness,
}

impl Members {
    /// Registers a participant. When the table is full of dead entries,
    /// reaps them (`recover` first recovers what each held) and tries again.
    pub(crate) fn join(
        &self,
        role: Role,
        identity: Identity,
        mut recover: impl FnMut(&Reaping),
    ) -> Result<Member, RegisterError> {
        match self.table.register(role, identity, &self.liveness) {
            Err(RegisterError::Full) => {
                for index in 0..self.table.len() {
                    if let Some(reaping) = self.table.start_reap(index, &self.liveness) {
                        recover(&reaping);
                        self.table.finish_reap(reaping);
                    }
                }
                self.table.register(role, identity, &self.liveness)
            }
            other => other,
        }
    }

    /// Whether `token` names a live participant.
    pub(crate) fn is_alive(&self, token: Token) -> bool {
        self.table.is_alive(token, &self.liveness)
    }

    /// Reaps the participant `token` names, if it is dead, running
    /// `recover` on what it held before its entry is freed. Whether this
    /// call reaped it (only one reaper does; a token whose slot has been
    /// reaped or reused since is not reaped again).
    pub(crate) fn reap(&self, token: Token, recover: impl FnOnce(&Reaping)) -> bool {
        let Some(slot) = self.table.slot(token.index()) else {
            return false;
        };
        // Relaxed: a first look; `start_reap` acquires what it claims.
        if slot.word.load(Ordering::Relaxed) >> 16 != token.generation() {
            return false;
        }
        match self.table.start_reap(token.index(), &self.liveness) {
            Some(reaping) if reaping.word >> 16 == token.generation() => {
                recover(&reaping);
                self.table.finish_reap(reaping);
                true
            }
            // Reused and dead again in between: leave it to its own reaper.
            Some(reaping) => {
                self.table.unstart_reap(reaping);
                false
            }
            None => false,
        }
    }

    /// The pid recorded for `token`'s slot, if the index is in range.
    #[cfg_attr(ipc_core_loom, allow(dead_code))] // for error messages
    pub(crate) fn pid_of(&self, token: Token) -> Option<u32> {
        let slot = self.table.slot(token.index())?;
        // Relaxed: for a message only.
        Some(slot.pid.load(Ordering::Relaxed))
    }
}

/// Production liveness: one OFD lock per participant.
#[cfg(not(ipc_core_loom))]
mod liveness {
    use std::os::fd::RawFd;

    use crate::sys;
    use nix::errno::Errno;

    use super::LOCK_BASE;

    /// Probes and takes participants' locks on one region's file.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Liveness {
        /// The region's fd: the file locks are taken on (through fresh
        /// descriptions) and probed from. The region outlives this.
        fd: RawFd,
    }

    impl Liveness {
        /// Liveness on the region file behind `fd`, which must stay open
        /// while this is used (the ring handles keep their region alive).
        pub(crate) fn new(fd: RawFd) -> Liveness {
            Liveness { fd }
        }

        /// Takes slot `index`'s lock on a new open file description;
        /// `None` if someone else holds it.
        pub(crate) fn hold(&self, index: usize) -> Result<Option<Hold>, Errno> {
            match sys::hold_lock(self.fd, LOCK_BASE + index as u64) {
                Ok(held) => Ok(Some(Hold(held))),
                Err(Errno::EAGAIN | Errno::EACCES) => Ok(None),
                Err(e) => Err(e),
            }
        }

        /// Whether anyone holds slot `index`'s lock. A failed probe counts
        /// as held: never declare a participant dead without proof.
        pub(crate) fn is_held(&self, index: usize) -> bool {
            sys::lock_is_held(self.fd, LOCK_BASE + index as u64).unwrap_or(true)
        }
    }

    /// A held lock; released when dropped in the process that took it.
    #[derive(Debug)]
    pub(crate) struct Hold(sys::HeldLock);

    impl Hold {
        /// Whether this is the process that took the lock (not a child made
        /// by `fork`, whose copy of a handle must not act for the parent).
        pub(crate) fn in_this_process(&self) -> bool {
            self.0.in_this_process()
        }

        /// The lock is gone as when the process dies: nothing else runs.
        #[cfg(test)]
        pub(crate) fn die(self) {
            drop(self);
        }
    }
}

/// Loom liveness: a flag per slot stands for its lock.
#[cfg(ipc_core_loom)]
mod liveness {
    use core::ptr::NonNull;

    use crate::sync::Ordering;

    type Flag = loom::sync::atomic::AtomicBool;

    /// One loom flag per slot, owned by the model's heap ring.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Liveness {
        flags: NonNull<Flag>,
        len: usize,
    }

    /// The flags a [`Liveness`] points to.
    pub(crate) fn flags(slots: usize) -> Box<[Flag]> {
        (0..slots).map(|_| Flag::new(false)).collect()
    }

    impl Liveness {
        /// Liveness over `flags`, which must outlive every use.
        pub(crate) fn new(flags: &[Flag]) -> Liveness {
            Liveness {
                flags: NonNull::from(flags).cast(),
                len: flags.len(),
            }
        }

        fn flag(&self, index: usize) -> &Flag {
            assert!(index < self.len);
            // SAFETY: in bounds, and the owner keeps the flags alive.
            unsafe { &*self.flags.as_ptr().add(index) }
        }

        pub(crate) fn hold(&self, index: usize) -> Result<Option<Hold>, nix::errno::Errno> {
            // Acquire: pairs with the Release in `Hold::die`/`leave`, as a
            // kernel lock hand-over orders the two holders.
            let taken = self
                .flag(index)
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
            // (`then`, not `then_some`: a `Hold` built for nothing would
            // clear the flag when dropped.)
            Ok(taken.then(|| Hold {
                liveness: *self,
                index,
            }))
        }

        pub(crate) fn is_held(&self, index: usize) -> bool {
            // Acquire: pairs with the Release in `Hold::drop`: a death the
            // kernel reports happens after everything the dead did.
            self.flag(index).load(Ordering::Acquire)
        }
    }

    /// A held flag, cleared on drop (a leave, or a death).
    #[derive(Debug)]
    pub(crate) struct Hold {
        liveness: Liveness,
        index: usize,
    }

    // SAFETY: a pointer into flags the model's owner keeps alive.
    unsafe impl Send for Hold {}
    // SAFETY: as above.
    unsafe impl Send for Liveness {}
    // SAFETY: as above.
    unsafe impl Sync for Liveness {}

    impl Hold {
        /// The process dies: the kernel drops its lock, nothing else runs.
        pub(crate) fn die(self) {
            drop(self);
        }

        /// Always: loom models have no `fork`.
        pub(crate) fn in_this_process(&self) -> bool {
            true
        }
    }

    impl Drop for Hold {
        fn drop(&mut self) {
            // Release: pairs with the Acquire in `is_held` and `hold`.
            self.liveness
                .flag(self.index)
                .store(false, Ordering::Release);
        }
    }
}

#[cfg(all(test, not(ipc_core_loom)))]
mod tests {
    use super::*;
    use crate::RegionOptions;

    /// A raw region with a table of `slots`.
    fn region(slots: u64) -> crate::Region {
        let mut layout = crate::Layout::raw(4096);
        layout.participants = slots;
        layout.data_offset = crate::Layout::data_offset_after(slots);
        RegionOptions::new()
            .layout(layout)
            .create_anonymous()
            .unwrap()
    }

    fn me() -> Identity {
        Identity::of_this_process()
    }

    #[test]
    fn registered_participants_are_alive_and_listed_until_they_leave() {
        let region = region(4);
        let members = region.members().unwrap();
        let a = members.join(Role::Producer, me(), |_| {}).unwrap();
        let b = members.join(Role::Consumer, me(), |_| {}).unwrap();
        assert_ne!(a.token.index(), b.token.index());
        assert!(members.is_alive(a.token) && members.is_alive(b.token));
        let entries = region.participants();
        assert_eq!(entries.len(), 2);
        assert!(entries
            .iter()
            .all(|e| e.alive && e.pid == std::process::id()));
        assert_eq!(entries[1].role, Some(Role::Consumer));
        let stale = a.token;
        members.table.leave(a);
        assert!(!members.is_alive(stale));
        assert_eq!(region.participants().len(), 1);
        // The slot is reused under a new generation: the old token stays dead.
        let c = members.join(Role::Producer, me(), |_| {}).unwrap();
        assert_eq!(c.token.index(), stale.index());
        assert_ne!(c.token, stale);
        assert!(!members.is_alive(stale) && members.is_alive(c.token));
        members.table.leave(b);
        members.table.leave(c);
    }

    #[test]
    fn a_dead_participant_is_listed_dead_reaped_and_its_slot_reused() {
        let region = region(2);
        let members = region.members().unwrap();
        let doomed = members.join(Role::Consumer, me(), |_| {}).unwrap();
        let token = doomed.token;
        doomed.hold.die();
        assert!(!members.is_alive(token));
        let entries = region.participants();
        assert_eq!((entries.len(), entries[0].alive), (1, false));
        // A live participant is never reaped.
        let live = members.join(Role::Producer, me(), |_| {}).unwrap();
        assert!(members
            .table
            .start_reap(live.token.index(), &members.liveness)
            .is_none());
        // The table is full (one live, one dead): joining reaps the dead one.
        let mut recovered = Vec::new();
        let next = members
            .join(Role::Consumer, me(), |reaping| {
                recovered.push(reaping.index)
            })
            .unwrap();
        assert_eq!(recovered, [token.index()]);
        assert_eq!(next.token.index(), token.index());
        // Full of live participants: refused.
        assert!(matches!(
            members.join(Role::Consumer, me(), |_| {}),
            Err(RegisterError::Full)
        ));
        members.table.leave(live);
        members.table.leave(next);
    }

    #[test]
    fn tokens_from_shared_memory_are_checked() {
        let region = region(2);
        let members = region.members().unwrap();
        for hostile in [0, u64::MAX, 0xffff, 5 << 16 | 1] {
            assert!(!members.is_alive(Token(hostile)));
            assert!(!members.reap(Token(hostile), |_| panic!("reaped a hostile token")));
        }
        assert_eq!(members.pid_of(Token(0xffff)), None);
    }
}
