//! Bad API inputs (names, sizes, layouts, options, fds, handles, buffers,
//! deadlines): each gives a clear typed error, at once, and leaves nothing
//! behind: no file descriptor, no shared mapping, no shm name. The
//! resources are counted before and after every case; one test, so that no
//! other test of this binary opens or maps anything meanwhile.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use ipc_core::channel::{Channel, RecvError as ChannelRecvError};
use ipc_core::{mpmc, spsc, Error, RegionOptions};
use ipc_tests::name::ShmName;
use ipc_tests::typed::Sample;

/// What a process holds that a failed call could leak.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    fds: usize,
    /// Shared mappings (`s` in the permissions column of `/proc/self/maps`).
    shared_maps: usize,
    /// Names in `/dev/shm` made by this process's tests.
    shm_names: usize,
}

fn held() -> Held {
    let fds = fs::read_dir("/proc/self/fd").unwrap().count();
    let maps = fs::read_to_string("/proc/self/maps").unwrap();
    let shared_maps = maps
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| p.ends_with('s'))
        })
        .count();
    let prefix = format!("ipc-tests-{}-", std::process::id());
    let shm_names = fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        })
        .unwrap_or(0);
    Held {
        fds,
        shared_maps,
        shm_names,
    }
}

/// Runs one case: `call` must fail with an error `expected` accepts, within
/// a second, and leave what the process holds as it was.
fn case<T: std::fmt::Debug, E: std::fmt::Debug + std::fmt::Display>(
    what: &str,
    call: impl FnOnce() -> Result<T, E>,
    expected: impl FnOnce(&E) -> bool,
    cases: &mut u32,
) {
    let before = held();
    let started = Instant::now();
    let result = call();
    let took = started.elapsed();
    let after = held();
    match result {
        Ok(v) => panic!("{what}: accepted, gave {v:?}"),
        Err(e) => {
            let message = e.to_string();
            assert!(expected(&e), "{what}: unexpected error {e:?} ({message})");
            assert!(!message.is_empty(), "{what}: an error that says nothing");
            eprintln!("{what}: {message}");
        }
    }
    assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
    assert_eq!(before, after, "{what}: leaked");
    *cases += 1;
}

fn memfd(len: i64) -> OwnedFd {
    let fd = nix::sys::memfd::memfd_create(c"bad-inputs", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .unwrap();
    nix::unistd::ftruncate(&fd, len).unwrap();
    fd
}

#[test]
fn bad_inputs_give_typed_errors_and_leak_nothing() {
    let mut n = 0;
    let opts = || RegionOptions::new().layout(spsc::layout(4096, 256).unwrap());
    let long_name = format!("/{}", "x".repeat(300));
    let invalid_name = |e: &Error| matches!(e, Error::InvalidName { .. });
    let invalid_size = |e: &Error| matches!(e, Error::InvalidSize { .. });

    // Names.
    case(
        "shm name without a leading slash",
        || opts().create_shm("no-slash"),
        invalid_name,
        &mut n,
    );
    case(
        "shm name with an inner slash",
        || opts().create_shm("/a/b"),
        invalid_name,
        &mut n,
    );
    case(
        "empty shm name",
        || opts().create_shm(""),
        invalid_name,
        &mut n,
    );
    case(
        "shm name of 301 bytes",
        || opts().create_shm(&long_name),
        invalid_name,
        &mut n,
    );
    case(
        "shm name with a NUL",
        || opts().create_shm("/nul\0here"),
        invalid_name,
        &mut n,
    );
    case(
        "memfd label with a NUL",
        || opts().create_memfd("nul\0here"),
        invalid_name,
        &mut n,
    );
    case(
        "open a name nobody made",
        || opts().open_shm(&ShmName::new("never-made")),
        |e| matches!(e, Error::NotFound { .. }),
        &mut n,
    );
    let taken = ShmName::new("bad-inputs-taken");
    let first = opts().create_shm(&taken).unwrap();
    case(
        "create a name that exists",
        || opts().create_shm(&taken),
        |e| matches!(e, Error::AlreadyExists { .. }),
        &mut n,
    );
    drop(first);
    case(
        "open a file in a directory that does not exist",
        || opts().open_file("/nonexistent-dir/region"),
        |e| matches!(e, Error::NotFound { .. }),
        &mut n,
    );
    case(
        "open a directory as a region file",
        || opts().open_file("/tmp"),
        |e| {
            matches!(
                e,
                Error::Os { .. }
                    | Error::Truncated { .. }
                    | Error::NotOurs { .. }
                    | Error::InvalidName { .. }
                    | Error::PermissionDenied { .. }
            )
        },
        &mut n,
    );

    // Sizes and layouts.
    case(
        "region of 0 bytes",
        || RegionOptions::new().size(0).create_anonymous(),
        invalid_size,
        &mut n,
    );
    case(
        "region of 2^64-1 bytes",
        || RegionOptions::new().size(u64::MAX).create_anonymous(),
        |e| matches!(e, Error::InvalidSize { .. } | Error::ResourceLimit { .. }),
        &mut n,
    );
    case(
        "SPSC capacity 0",
        || spsc::layout(0, 8),
        invalid_size,
        &mut n,
    );
    case(
        "SPSC capacity not a power of two",
        || spsc::layout(1000, 8),
        invalid_size,
        &mut n,
    );
    case(
        "SPSC capacity 2^41",
        || spsc::layout(1 << 41, 8),
        invalid_size,
        &mut n,
    );
    case(
        "SPSC message larger than half the ring",
        || spsc::layout(4096, 4096),
        invalid_size,
        &mut n,
    );
    case(
        "MPMC capacity 3",
        || mpmc::layout(3, 8),
        invalid_size,
        &mut n,
    );
    case(
        "MPMC capacity 2^33",
        || mpmc::layout(1 << 33, 8),
        invalid_size,
        &mut n,
    );
    case(
        "MPMC message of 2^64-1 bytes",
        || mpmc::layout(4, u64::MAX),
        invalid_size,
        &mut n,
    );
    case(
        "MPMC with 1 participant slot",
        || mpmc::layout_with_participants(4, 8, 1),
        invalid_size,
        &mut n,
    );
    case(
        "MPMC with 70,000 participant slots",
        || mpmc::layout_with_participants(4, 8, 70_000),
        invalid_size,
        &mut n,
    );

    // File descriptors.
    case(
        "open /dev/null as a region",
        || RegionOptions::new().open_fd(fs::File::open("/dev/null").unwrap().into()),
        |_| true,
        &mut n,
    );
    case(
        "open a pipe as a region",
        || {
            let (r, _w) = nix::unistd::pipe().unwrap();
            RegionOptions::new().open_fd(r)
        },
        |_| true,
        &mut n,
    );
    case(
        "open a 10-byte unsealed memfd as a region",
        || RegionOptions::new().open_fd(memfd(10)),
        |_| true,
        &mut n,
    );
    case(
        "open a zeroed 1 MiB memfd as a region",
        || {
            RegionOptions::new()
                .init_timeout(Duration::ZERO)
                .open_fd(memfd(1 << 20))
        },
        |e| {
            matches!(
                e,
                Error::NotOurs { .. } | Error::InitTimeout { .. } | Error::NotSealed
            )
        },
        &mut n,
    );
    case(
        "receive a region from a socket whose peer sent nothing and left",
        || {
            let (a, b) = UnixStream::pair().unwrap();
            drop(b);
            RegionOptions::new().receive_fd(&a)
        },
        |_| true,
        &mut n,
    );

    // Handles on the wrong region, and one too many.
    let raw = std::sync::Arc::new(RegionOptions::new().size(4096).create_anonymous().unwrap());
    let wrong_kind = |e: &Error| matches!(e, Error::WrongKind { .. } | Error::InvalidLayout { .. });
    case(
        "SPSC producer on a raw region",
        || spsc::Producer::attach(raw.clone()),
        wrong_kind,
        &mut n,
    );
    case(
        "MPMC consumer on a raw region",
        || mpmc::Consumer::attach(raw.clone()),
        wrong_kind,
        &mut n,
    );
    let ring = std::sync::Arc::new(opts().create_anonymous().unwrap());
    case(
        "MPMC producer on an SPSC ring",
        || mpmc::Producer::attach(ring.clone()),
        wrong_kind,
        &mut n,
    );
    let (mut tx, mut rx) = spsc::channel(ring.clone()).unwrap();
    case(
        "a second SPSC producer",
        || spsc::Producer::attach(ring.clone()),
        |e| matches!(e, Error::AlreadyAttached { .. }),
        &mut n,
    );
    let small = std::sync::Arc::new(
        RegionOptions::new()
            .layout(mpmc::layout_with_participants(4, 8, 2).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    let (_p, _c) = mpmc::channel(small.clone()).unwrap();
    case(
        "a third participant in a 2-slot MPMC table",
        || mpmc::Producer::attach(small.clone()),
        |e| matches!(e, Error::TooManyParticipants { .. }),
        &mut n,
    );
    case(
        "raw write past the end",
        || raw.write_at(raw.data_len() - 6, &[0; 16]),
        |e| matches!(e, Error::OutOfBounds { .. }),
        &mut n,
    );
    case(
        "unaligned atomic word",
        || raw.atomic_u64(3).map(|_| ()),
        |e| matches!(e, Error::OutOfBounds { .. }),
        &mut n,
    );
    case(
        "raw write into a ring's region",
        || ring.write_at(0, &[1]),
        |e| matches!(e, Error::WrongKind { .. }),
        &mut n,
    );

    // Messages, buffers and deadlines.
    case(
        "a message over the ring's maximum",
        || tx.try_send(&[0; 257]),
        |e| matches!(e, spsc::SendError::TooLarge { len: 257, max: 256 }),
        &mut n,
    );
    tx.try_send(&[7; 100]).unwrap();
    case(
        "a buffer too small for the next message",
        || rx.try_recv_into(&mut [0; 10]),
        |e| matches!(e, spsc::RecvError::BufferTooSmall { needed: 100 }),
        &mut n,
    );
    assert_eq!(rx.try_recv().unwrap().len(), 100, "the message stayed");
    case(
        "a receive deadline already past",
        || {
            rx.recv_deadline(Instant::now() - Duration::from_secs(1))
                .map(|m| m.len())
        },
        |e| matches!(e, spsc::RecvError::Timeout | spsc::RecvError::Empty),
        &mut n,
    );
    while tx.try_send(&[1; 256]).is_ok() {}
    while tx.try_send(&[1; 8]).is_ok() {}
    case(
        "a send deadline already past, on a full ring",
        || tx.send_deadline(&[1; 8], Instant::now() - Duration::from_secs(1)),
        |e| matches!(e, spsc::SendError::Timeout | spsc::SendError::Full),
        &mut n,
    );
    case(
        "a zero timeout on a full ring",
        || tx.send_timeout(&[1; 8], Duration::ZERO),
        |e| matches!(e, spsc::SendError::Timeout | spsc::SendError::Full),
        &mut n,
    );
    while rx.try_recv().is_ok() {}
    drop(tx);
    case(
        "the longest timeout, with the producer gone",
        || rx.recv_timeout(Duration::MAX).map(|m| m.len()),
        |e| matches!(e, spsc::RecvError::Disconnected),
        &mut n,
    );

    // Types.
    let typed = ShmName::new("bad-inputs-typed");
    let _u64s = Channel::serde::<u64>().create(&typed).unwrap();
    case(
        "open a u64 channel as a String channel",
        || Channel::serde::<String>().open(&typed),
        |e| matches!(e, Error::TypeMismatch { .. }),
        &mut n,
    );
    case(
        "open a serde channel as a POD channel",
        || Channel::pod::<Sample>().open(&typed),
        |e| matches!(e, Error::TypeMismatch { .. } | Error::LayoutMismatch { .. }),
        &mut n,
    );
    let pod = Channel::pod::<Sample>().anonymous().unwrap();
    let mut pod_rx = pod.receiver().unwrap();
    case(
        "a POD receive with nothing sent, deadline past",
        || pod_rx.recv_deadline(Instant::now() - Duration::from_secs(1)),
        |e| matches!(e, ChannelRecvError::Timeout | ChannelRecvError::Empty),
        &mut n,
    );
    eprintln!("{n} bad inputs, each a typed error, nothing leaked");
    assert!(n >= 20);
}
