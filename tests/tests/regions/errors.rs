//! Errors of creating, opening and using regions, each variant provoked
//! (the header checks have their own module, `header`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use ipc_core::{remove_shm, Error, HugePages, RegionOptions};
use ipc_tests::name::ShmName;

use crate::{assert_mentions, err, err_display, ok_details, run_peer, temp_dir, CHILD_TIMEOUT};

#[test]
fn error_not_found() {
    let name = ShmName::new("not-found");
    let e = err(RegionOptions::new().open_shm(&name));
    assert!(
        matches!(&e, Error::NotFound { name: n } if *n == *name),
        "{e:?}"
    );
    assert_mentions(&e, &[&name, "not found"]);

    let dir = temp_dir();
    let path = dir.path().join("missing");
    let e = err(RegionOptions::new().open_file(&path));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_mentions(&e, &[path.to_str().unwrap()]);
    let e = err(RegionOptions::new()
        .size(4096)
        .create_file(dir.path().join("no-dir/region")));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn error_permission_denied() {
    // As root, permission bits are bypassed (CAP_DAC_OVERRIDE); the peer drops
    // to uid 65534, which loses every capability, before opening.
    let dir = temp_dir();
    let closed = ShmName::new("denied-closed");
    let _closed = RegionOptions::new()
        .size(4096)
        .mode(0o600)
        .create_shm(&closed)
        .unwrap();
    let (_, report) = run_peer(&["open-unprivileged", "shm", &closed]);
    assert_mentions(
        &err_display(&report, "PermissionDenied"),
        &[&closed, "permission denied"],
    );

    let path = dir.path().join("closed");
    let _file = RegionOptions::new()
        .size(4096)
        .mode(0o600)
        .create_file(&path)
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (_, report) = run_peer(&["open-unprivileged", "file", path.to_str().unwrap()]);
    assert_mentions(
        &err_display(&report, "PermissionDenied"),
        &[path.to_str().unwrap()],
    );

    // The same peer may open an object whose mode lets it, once it trusts
    // another user's object: the denial above was the mode's doing.
    let open = ShmName::new("denied-open");
    let _open = RegionOptions::new()
        .size(4096)
        .mode(0o666)
        .create_shm(&open)
        .unwrap();
    let (_, report) = run_peer(&["open-unprivileged", "shm", &open, "trust"]);
    ok_details(&report);
}

#[test]
fn error_already_exists() {
    let dir = temp_dir();
    let path = dir.path().join("region");
    let _region = RegionOptions::new().size(4096).create_file(&path).unwrap();
    let e = err(RegionOptions::new().size(4096).create_file(&path));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert_mentions(&e, &[path.to_str().unwrap(), "already exists"]);
    // (create_shm's case is in `create_shm_is_exclusive`.)
}

#[test]
fn error_invalid_name() {
    let long = format!("/{}", "x".repeat(255));
    let cases = [
        ("no-slash", "must start with '/'"),
        ("", "must start with '/'"),
        ("/", "after '/'"),
        ("/inner/slash", "must not contain '/'"),
        (long.as_str(), "longer than 255"),
        ("/nul\0byte", "NUL"),
        ("/..", "not names"),
    ];
    for (name, reason) in cases {
        for result in [
            RegionOptions::new().size(4096).create_shm(name).map(drop),
            RegionOptions::new().open_shm(name).map(drop),
            remove_shm(name),
        ] {
            let e = result.unwrap_err();
            assert!(matches!(e, Error::InvalidName { .. }), "{name:?}: {e:?}");
            assert_mentions(&e, &["invalid shared-memory name", reason]);
        }
    }
    // The longest valid name is accepted.
    let longest = ShmName::new(&"y".repeat(200));
    let padded = format!("{}{}", &*longest, "z".repeat(255 - longest.len()));
    assert_eq!(padded.len(), 255);
    let padded = ShmName::adopt(padded);
    RegionOptions::new().size(4096).create_shm(&padded).unwrap();
    // memfd labels.
    let e = err(RegionOptions::new().size(4096).create_memfd("nul\0label"));
    assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
    let e = err(RegionOptions::new()
        .size(4096)
        .create_memfd(&"m".repeat(250)));
    assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
    assert_mentions(&e, &["249"]);
}

#[test]
fn error_invalid_size() {
    let e = err(RegionOptions::new().size(0).create_anonymous());
    assert!(
        matches!(e, Error::InvalidSize { requested: 0, .. }),
        "{e:?}"
    );
    assert_mentions(&e, &["invalid region size 0"]);
    let e = err(RegionOptions::new().size(u64::MAX).create_anonymous());
    assert!(
        matches!(
            e,
            Error::InvalidSize {
                requested: u64::MAX,
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &[&u64::MAX.to_string(), "too large"]);
    let e = err(RegionOptions::new().size(u64::MAX / 2).create_memfd("huge"));
    assert!(matches!(e, Error::InvalidSize { .. }), "{e:?}");
    let e = err(RegionOptions::new().create_anonymous());
    assert!(matches!(e, Error::InvalidSize { .. }), "{e:?}");
    assert_mentions(&e, &["no size"]);

    // A rejected size leaves no name behind.
    let name = ShmName::new("invalid-size");
    let e = err(RegionOptions::new().size(u64::MAX).create_shm(&name));
    assert!(matches!(e, Error::InvalidSize { .. }), "{e:?}");
    assert!(!name.dev_shm().exists());
    let dir = temp_dir();
    let e = err(RegionOptions::new()
        .size(0)
        .create_file(dir.path().join("region")));
    assert!(matches!(e, Error::InvalidSize { .. }), "{e:?}");
    assert!(!dir.path().join("region").exists());
}

#[test]
fn error_resource_limit_memlock() {
    // RLIMIT_MEMLOCK of 64 KiB, enforced because the peer drops to an
    // unprivileged uid (root's CAP_IPC_LOCK would bypass it).
    let (_, report) = run_peer(&["mlock-limited", "65536", &(1u64 << 20).to_string()]);
    let message = err_display(&report, "ResourceLimit");
    assert_mentions(&message, &["mlock", "RLIMIT_MEMLOCK", "65536"]);
    // Under the limit, locking works.
    let (_, report) = run_peer(&["mlock-limited", "65536", "4096"]);
    ok_details(&report);
}

#[test]
fn failed_creation_leaves_no_name_behind() {
    // The peer's create fails after the object exists (mlock over the
    // limit); whatever the persist setting, the half-made object is removed.
    let dir = temp_dir();
    // The peer runs unprivileged: let it create files here.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let big = (1u64 << 20).to_string();
    for persist in [&[][..], &["persist"][..]] {
        let name = ShmName::new(&format!("failed-create-{}", persist.len()));
        let path = dir.path().join(format!("region-{}", persist.len()));
        let path = path.to_str().unwrap();
        for (kind, target) in [("shm", &*name), ("file", path)] {
            let mut args = vec!["mlock-limited", "65536", &big, kind, target];
            args.extend_from_slice(persist);
            let (_, report) = run_peer(&args);
            err_display(&report, "ResourceLimit");
        }
        assert!(
            !name.dev_shm().exists(),
            "{persist:?}: shm name left behind"
        );
        assert!(!Path::new(path).exists(), "{persist:?}: file left behind");
    }
}

#[test]
fn error_resource_limit_nofile() {
    // RLIMIT_NOFILE of 3 with fds 0..=2 open: no new fd can be made.
    let (_, report) = run_peer(&["nofile-limited", "memfd", "ipc-tests-nofile"]);
    assert_mentions(
        &err_display(&report, "ResourceLimit"),
        &["memfd_create", "RLIMIT_NOFILE"],
    );
    let name = ShmName::new("nofile");
    let (_, report) = run_peer(&["nofile-limited", "shm", &name]);
    assert_mentions(
        &err_display(&report, "ResourceLimit"),
        &["shm_open", "RLIMIT_NOFILE"],
    );
    assert!(!name.dev_shm().exists());
}

fn huge_pages_configured() -> u64 {
    ["nr_hugepages", "nr_overcommit_hugepages"]
        .iter()
        .map(|file| {
            fs::read_to_string(Path::new("/proc/sys/vm").join(file))
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn error_huge_pages_unavailable() {
    let required = RegionOptions::new()
        .size(4096)
        .huge_pages(HugePages::Required);
    // Named objects and files cannot have hugetlb pages at all.
    let name = ShmName::new("huge");
    let e = err(required.create_shm(&name));
    assert!(matches!(e, Error::HugePagesUnavailable { .. }), "{e:?}");
    assert_mentions(&e, &["huge pages required", "shm"]);
    assert!(!name.dev_shm().exists());
    let dir = temp_dir();
    let e = err(required.create_file(dir.path().join("region")));
    assert!(matches!(e, Error::HugePagesUnavailable { .. }), "{e:?}");
    assert!(!dir.path().join("region").exists());

    // Anonymous and memfd regions fail only when the pool is empty.
    for result in [
        required.create_anonymous(),
        required.create_memfd("ipc-tests-huge"),
    ] {
        match result {
            Err(e @ Error::HugePagesUnavailable { .. }) => {
                assert_mentions(&e, &["huge pages required"]);
            }
            Ok(region) => {
                assert!(
                    huge_pages_configured() > 0,
                    "got huge pages from an empty pool"
                );
                assert_eq!(region.len() % (2 << 20), 0);
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    if huge_pages_configured() == 0 {
        assert!(required.create_anonymous().is_err());
    }
    // Best effort never fails.
    RegionOptions::new()
        .size(4 << 20)
        .huge_pages(HugePages::BestEffort)
        .create_anonymous()
        .unwrap();
}

#[test]
fn error_out_of_bounds() {
    let region = RegionOptions::new().size(4096).create_anonymous().unwrap();
    let size = region.data_len();
    region.write_at(size - 4, b"last").unwrap();
    let cases = [
        region.write_at(size, b"x"),
        region.write_at(size - 3, b"last"),
        region.write_at(u64::MAX, b"x"),
        region.read_at(size - 1, &mut [0u8; 2]),
        region.atomic_u64(size - 4).map(drop),
        region.atomic_u64(4).map(drop),
    ];
    for result in cases {
        let e = result.unwrap_err();
        assert!(
            matches!(e, Error::OutOfBounds { size: s, .. } if s == size),
            "{e:?}"
        );
    }
    let e = region.write_at(size, b"xy").unwrap_err();
    assert_mentions(
        &e,
        &[
            &format!("2 bytes at offset {size}"),
            &format!("{size}-byte data area"),
        ],
    );
    region.atomic_u64(size - 8).unwrap();
}

#[test]
fn error_os() {
    let dir = temp_dir();
    // A directory cannot be opened read-write.
    let e = err(RegionOptions::new().open_file(dir.path()));
    match &e {
        Error::Os { call, source } => {
            assert_eq!(*call, "open");
            assert_eq!(source.raw_os_error(), Some(libc::EISDIR));
        }
        _ => panic!("{e:?}"),
    }
    assert_mentions(&e, &["open failed"]);
    assert!(std::error::Error::source(&e).is_some());

    // Sending to a peer that is gone.
    let region = RegionOptions::new().size(4096).create_anonymous().unwrap();
    let (closed, gone) = UnixStream::pair().unwrap();
    drop(gone);
    let e = region.send_fd(&closed).unwrap_err();
    match &e {
        Error::Os { call, source } => {
            assert_eq!(*call, "sendmsg");
            assert_eq!(source.raw_os_error(), Some(libc::EPIPE));
        }
        _ => panic!("{e:?}"),
    }
    let (mut a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(CHILD_TIMEOUT)).unwrap();
    // A message without an fd, then a closed socket.
    a.write_all(b"x").unwrap();
    let e = err(RegionOptions::new().receive_fd(&b));
    assert_os_call(&e, "recvmsg");
    assert_mentions(&e, &["recvmsg failed", "no fd"]);
    drop(a);
    let e = err(RegionOptions::new().receive_fd(&b));
    assert_os_call(&e, "recvmsg");
}

/// Asserts that `e` is an `Error::Os` from the system call `name`.
#[track_caller]
fn assert_os_call(e: &Error, name: &str) {
    assert!(
        matches!(e, Error::Os { call, .. } if *call == name),
        "{e:?}"
    );
}
