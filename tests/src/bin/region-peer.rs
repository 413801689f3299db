//! Helper process for `tests/tests/regions/`: an unrelated process (spawned
//! with `std::process::Command`, not forked) that creates or attaches to
//! regions the way a real peer would.
//!
//! Usage: `region-peer <role> <args...>`. Each role prints one line on
//! stdout, `OK <details>` or `ERR <Variant> <Display>`, and exits 0; any
//! other exit status (with a message on stderr) means the peer itself broke.
//!
//! Roles:
//! - `memfd-reply <socket-fd> <expect> <reply>`: receive a region fd over the
//!   inherited Unix socket, check that the data area starts with `expect`,
//!   check that the fd cannot be truncated, write `reply` at offset 4096,
//!   then send `D` (done) over the socket.
//! - `shm-reply <name> <expect> <reply>`: the same over a named shm object.
//! - `shm-create <name> <contents>`: create a persistent shm object holding
//!   `contents`, print `OK <pid>` and exit (leaving the name behind).
//! - `shm-abandon <name> <contents>`: create a shm object (not persistent)
//!   holding `contents`, print `OK <pid>` and exit without dropping it, as a
//!   crashed creator would (leaving the name behind).
//! - `file-create <path> <contents>`: create a file region holding `contents`.
//! - `create-umask <umask> <mode|default> <shm|file> <name-or-path>`: set the
//!   umask, create a persistent shm object or a file region with the mode.
//! - `open-unprivileged <shm|file> <name-or-path> [trust]`: drop to uid/gid
//!   65534 (if root), then open, trusting another user's object if asked.
//! - `mlock-limited <limit> <size> [<shm|file> <name-or-path> [persist]]`:
//!   set `RLIMIT_MEMLOCK` to `limit` bytes, drop privileges (so
//!   `CAP_IPC_LOCK` no longer bypasses it), create a locked region of `size`
//!   bytes (anonymous unless a backing is given).
//! - `nofile-limited <memfd|shm> <name>`: set `RLIMIT_NOFILE` to 3, so no new
//!   fd can be opened, then create a memfd or shm region.
//! - `create-sized <shm|file> <name-or-path> <bytes>`: create a raw region of
//!   `bytes` bytes (e.g. in a tmpfs too small for it), print `OK <len>`.
//! - `shrink <shm|file> <name-or-path>`: a hostile peer: open the object
//!   without this library and truncate it to 0 bytes.
//! - `forged-sigbus <name> <inherited|default>`: create a raw shm region
//!   (with `default`, after setting `SIGBUS` to its default action), then
//!   send itself a queued `SIGBUS` (`SI_QUEUE`, as `sigqueue` sends it)
//!   whose address lies in the region, then a plain `kill -BUS`; after
//!   each, the region must not be poisoned; then truncate the object: the
//!   read after must report `Poisoned` (the guard still stands).
//! - `hugetlb-punched`: create a hugetlb memfd region of 2 huge pages and
//!   receive a second mapping of it (its fd sent to ourselves), then, as a
//!   hostile holder of the fd would, punch a hole over its last huge page
//!   (allowed by the seals: it is not a shrink), take every free huge page,
//!   and read the hole through both mappings: each must report `Poisoned`
//!   (no huge page is left to fill the hole: the kernel raises `SIGBUS`).
//!   `SKIP <why>` without huge pages.
//! - `receive-fds <socket-fd>`: count this process's open fds, receive a
//!   region with `receive_fd`, drop it, count again: `OK <before> <after>`.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::exit;

use ipc_core::{Error, Region, RegionOptions};

/// Where a peer writes its reply in the data area.
const REPLY_OFFSET: u64 = 4096;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["memfd-reply", fd, expect, reply] => memfd_reply(parse(fd), expect, reply),
        ["shm-reply", name, expect, reply] => {
            let region = RegionOptions::new().open_shm(name);
            report(region.and_then(|r| check_and_reply(&r, expect, reply)));
        }
        ["shm-create", name, contents] => {
            let region = RegionOptions::new()
                .size(8192)
                .persist(true)
                .create_shm(name);
            report(region.and_then(|r| {
                r.write_at(0, contents.as_bytes())?;
                Ok(std::process::id().to_string())
            }));
        }
        ["shm-abandon", name, contents] => {
            let region = RegionOptions::new().size(8192).create_shm(name);
            report(region.and_then(|r| {
                r.write_at(0, contents.as_bytes())?;
                std::mem::forget(r);
                Ok(std::process::id().to_string())
            }));
        }
        ["file-create", path, contents] => {
            let region = RegionOptions::new().size(8192).create_file(path);
            report(region.and_then(|r| {
                r.write_at(0, contents.as_bytes())?;
                Ok(r.len().to_string())
            }));
        }
        ["create-umask", umask, mode, kind, name] => {
            // SAFETY: umask only swaps the process's file-creation mask; this
            // process is single-threaded here.
            unsafe { libc::umask(parse_octal(umask) as libc::mode_t) };
            let mut options = RegionOptions::new().size(4096).persist(true);
            if *mode != "default" {
                options = options.mode(parse_octal(mode));
            }
            report(create(&options, kind, name).map(|_| String::new()));
        }
        ["open-unprivileged", kind, name, rest @ ..] => {
            drop_privileges();
            let options = RegionOptions::new().trust_foreign(rest == ["trust"]);
            report(open(&options, kind, name).map(|_| String::new()));
        }
        ["mlock-limited", limit, size, rest @ ..] => {
            set_limit(libc::RLIMIT_MEMLOCK, parse(limit));
            drop_privileges();
            let options = RegionOptions::new().size(parse(size)).lock(true);
            let region = match rest {
                [] => options.create_anonymous(),
                [kind, name] => create(&options, kind, name),
                [kind, name, "persist"] => create(&options.persist(true), kind, name),
                _ => fail(&format!("unknown arguments {args:?}")),
            };
            report(region.map(|r| r.len().to_string()));
        }
        ["nofile-limited", kind, name] => {
            set_limit(libc::RLIMIT_NOFILE, 3);
            let options = RegionOptions::new().size(4096);
            let region = match *kind {
                "memfd" => options.create_memfd(name),
                _ => options.create_shm(name),
            };
            report(region.map(|_| String::new()));
        }
        ["create-sized", kind, name, bytes] => {
            let options = RegionOptions::new().size(parse(bytes));
            report(create(&options, kind, name).map(|r| r.len().to_string()));
        }
        ["shrink", kind, name] => {
            let path = match *kind {
                "shm" => format!("/dev/shm/{}", name.trim_start_matches('/')),
                _ => name.to_string(),
            };
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap_or_else(|e| fail(&format!("opening {path}: {e}")));
            file.set_len(0)
                .unwrap_or_else(|e| fail(&format!("truncating {path}: {e}")));
            println!("OK");
        }
        ["forged-sigbus", name, previous] => forged_sigbus(name, previous),
        ["hugetlb-punched"] => hugetlb_punched(),
        ["receive-fds", fd] => {
            // SAFETY: as in `memfd_reply`.
            let socket = unsafe { UnixStream::from_raw_fd(parse(fd)) };
            let before = open_fds();
            let region = RegionOptions::new().receive_fd(&socket);
            drop(region);
            report(Ok(format!("{before} {}", open_fds())));
        }
        _ => fail(&format!("unknown arguments {args:?}")),
    }
}

fn memfd_reply(fd: RawFd, expect: &str, reply: &str) {
    // SAFETY: the test passed us this fd number, a Unix socket it left open
    // across exec for us alone; nothing else in this process owns it.
    let mut socket = unsafe { UnixStream::from_raw_fd(fd) };
    let result = RegionOptions::new().receive_fd(&socket).and_then(|region| {
        // The memfd is sealed: this process must not be able to shrink it.
        let fd = region.fd().expect("a memfd region has an fd");
        match nix::unistd::ftruncate(fd.as_fd(), 0) {
            Err(nix::errno::Errno::EPERM) => {}
            other => fail(&format!("ftruncate on the sealed memfd gave {other:?}")),
        }
        check_and_reply(&region, expect, reply)
    });
    let done = match &result {
        Ok(_) => b"D",
        Err(_) => b"E",
    };
    if let Err(e) = socket.write_all(done) {
        fail(&format!("writing to the socket: {e}"));
    }
    report(result);
    // Wait for the test to close its end, so it decides when we go.
    let mut byte = [0u8; 1];
    let _ = socket.read(&mut byte);
}

fn check_and_reply(region: &Region, expect: &str, reply: &str) -> Result<String, Error> {
    let mut found = vec![0u8; expect.len()];
    region.read_at(0, &mut found)?;
    if found != expect.as_bytes() {
        fail(&format!(
            "expected {expect:?} in the region, found {:?}",
            String::from_utf8_lossy(&found)
        ));
    }
    region.write_at(REPLY_OFFSET, reply.as_bytes())?;
    Ok(region.creator_pid().to_string())
}

fn create(options: &RegionOptions, kind: &str, name: &str) -> Result<Region, Error> {
    match kind {
        "shm" => options.create_shm(name),
        "file" => options.create_file(name),
        _ => fail(&format!("unknown backing {kind}")),
    }
}

fn open(options: &RegionOptions, kind: &str, name: &str) -> Result<Region, Error> {
    match kind {
        "shm" => options.open_shm(name),
        "file" => options.open_file(name),
        _ => fail(&format!("unknown backing {kind}")),
    }
}

/// Becomes uid/gid 65534 ("nobody") if running as root: a uid change from 0
/// clears every capability, so permission bits and rlimits apply again.
fn drop_privileges() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    // SAFETY: plain syscalls on this single-threaded process's credentials;
    // setgroups reads zero entries from a null pointer.
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(65534) == 0
            && libc::setuid(65534) == 0
    };
    if !ok {
        fail(&format!(
            "could not drop privileges: {}",
            std::io::Error::last_os_error()
        ));
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads one `rlimit` through a valid pointer.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        fail(&format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
}

fn report(result: Result<String, Error>) {
    let line = match result {
        Ok(details) => format!("OK {details}"),
        Err(e) => format!("ERR {} {e}", variant(&e)),
    };
    println!("{line}");
}

/// The variant's name, taken from its `Debug` form.
fn variant(e: &Error) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

/// How many fds this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap_or_else(|e| fail(&format!("/proc/self/fd: {e}")))
        .count()
}

fn parse<T: std::str::FromStr>(text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| fail(&format!("not a number: {text:?}")))
}

fn parse_octal(text: &str) -> u32 {
    u32::from_str_radix(text, 8).unwrap_or_else(|_| fail(&format!("not octal: {text:?}")))
}

fn fail(message: &str) -> ! {
    eprintln!("region-peer: {message}");
    exit(2)
}

fn forged_sigbus(name: &str, previous: &str) {
    if previous == "default" {
        // SAFETY: restores a default action, before any thread is started.
        unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
    }
    let region = RegionOptions::new()
        .size(1 << 16)
        .create_shm(name)
        .unwrap_or_else(|e| fail(&format!("creating {name}: {e}")));
    const AT: u64 = 40_000;
    region.write_at(AT, b"before").unwrap();
    let unharmed = |after: &str| {
        let mut buf = [0u8; 6];
        match region.read_at(AT, &mut buf) {
            Ok(()) if &buf == b"before" && !region.is_poisoned() => {}
            other => {
                println!("ERR poisoned after {after}: {other:?}");
                exit(0)
            }
        }
    };
    // A queued SIGBUS whose address names the region. Another process can
    // send one with `sigqueue` (the kernel lets it choose any negative
    // `si_code`, never a fault's); to ourselves the syscall is simplest.
    // SAFETY: siginfo_t is plain data; all-zero is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    info.si_signo = libc::SIGBUS;
    info.si_code = libc::SI_QUEUE;
    let address = region.data_ptr().as_ptr() as usize + AT as usize;
    // SAFETY: the union after the three ints and their padding (offset 16
    // on 64-bit Linux) is where a handler reads `si_addr`.
    unsafe {
        std::ptr::from_mut(&mut info)
            .cast::<u8>()
            .add(16)
            .cast::<usize>()
            .write_unaligned(address)
    };
    // SAFETY: a valid siginfo for our own thread.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            libc::getpid(),
            libc::gettid(),
            libc::SIGBUS,
            &info,
        )
    };
    if sent != 0 {
        fail(&format!(
            "rt_tgsigqueueinfo: {}",
            std::io::Error::last_os_error()
        ));
    }
    unharmed("a queued SIGBUS naming the region");
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGBUS).unwrap();
    unharmed("a plain SIGBUS");
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| fail(&format!("opening {path}: {e}")));
    file.set_len(0).unwrap();
    let mut buf = [0u8; 6];
    match region.read_at(AT, &mut buf) {
        Err(Error::Poisoned { .. }) => println!("OK"),
        other => println!("ERR after truncation: {other:?}"),
    }
}

fn hugetlb_punched() {
    const HUGE: u64 = 2 << 20;
    let region = match RegionOptions::new()
        .size(HUGE)
        .huge_pages(ipc_core::HugePages::Required)
        .create_memfd("ipc-tests-hugetlb-punched")
    {
        Ok(region) => region,
        Err(Error::HugePagesUnavailable { reason }) => {
            println!("SKIP {reason}");
            return;
        }
        Err(e) => fail(&format!("creating: {e}")),
    };
    let (ours, theirs) = UnixStream::pair().unwrap();
    region.send_fd(&ours).unwrap();
    let received = RegionOptions::new()
        .receive_fd(&theirs)
        .unwrap_or_else(|e| fail(&format!("receiving: {e}")));
    // In the last huge page (past the header's), inside the data area.
    let at = region.data_len() - 4096;
    let hole = region.len() - HUGE;
    if region.layout().data_offset + at < hole {
        fail(&format!(
            "{at} is not in the last huge page of {}",
            region.len()
        ));
    }
    region.write_at(at, b"before").unwrap();
    let fd = region.fd().unwrap().as_raw_fd();
    let hole = hole as libc::off_t;
    // SAFETY: fallocate on an fd we hold.
    let punched = unsafe {
        libc::fallocate(
            fd,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            hole,
            HUGE as libc::off_t,
        )
    };
    if punched != 0 {
        fail(&format!("punching: {}", std::io::Error::last_os_error()));
    }
    // Take every free huge page, so none is left to fill the hole.
    let mut taken = 0;
    loop {
        // SAFETY: a fresh anonymous mapping, never unmapped (it lives
        // until exit).
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                HUGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            break;
        }
        // SAFETY: inside the mapping just made.
        unsafe { page.cast::<u8>().write_volatile(1) };
        taken += 1;
    }
    let mut buf = [0u8; 6];
    let got = [received.read_at(at, &mut buf), region.read_at(at, &mut buf)];
    match got {
        [Err(Error::Poisoned { .. }), Err(Error::Poisoned { .. })] => println!("OK {taken}"),
        other => println!("ERR after the hole ({taken} pages taken): {other:?}"),
    }
}
