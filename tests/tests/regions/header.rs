//! What an opener validates in a header: magic, version, layout, sizes,
//! and the publication of the init word.

use std::fs;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use ipc_core::layout::{HEADER_SIZE, MAGIC, VERSION};
use ipc_core::{Error, RegionOptions};
use ipc_tests::name::ShmName;

use crate::{
    assert_holds, assert_mentions, err, field, make_region_file, patch, read_u32, temp_dir,
    CHILD_TIMEOUT,
};

#[test]
fn error_not_ours() {
    let dir = temp_dir();
    let path = dir.path().join("text");
    let text = "This is a text file, not a shared-memory region.\n".repeat(8);
    assert!(text.len() >= 256);
    fs::write(&path, &text).unwrap();
    let e = err(RegionOptions::new()
        .init_timeout(Duration::from_millis(200))
        .open_file(&path));
    let magic = u64::from_le_bytes(text.as_bytes()[..8].try_into().unwrap());
    assert!(
        matches!(e, Error::NotOurs { found_magic } if found_magic == magic),
        "{e:?}"
    );
    assert_mentions(&e, &[&format!("{magic:#018x}"), &format!("{MAGIC:#018x}")]);
}

#[test]
fn error_version_mismatch() {
    // In a file, rewritten through the file system after the creator left.
    let dir = temp_dir();
    let path = dir.path().join("region");
    make_region_file(&path, RegionOptions::new().size(4096), b"v1");
    patch(&path, field::VERSION, &(VERSION + 1).to_le_bytes());
    let e = err(RegionOptions::new().open_file(&path));
    assert!(
        matches!(e, Error::VersionMismatch { found, expected } if found == VERSION + 1 && expected == VERSION),
        "{e:?}"
    );
    assert_mentions(
        &e,
        &[
            &format!("version {}", VERSION + 1),
            &format!("speaks {VERSION}"),
        ],
    );

    // In a live shm object, through a second mapping of the same object.
    let name = ShmName::new("version");
    let region = RegionOptions::new().size(4096).create_shm(&name).unwrap();
    let object = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.dev_shm())
        .unwrap();
    // SAFETY: a new shared mapping of a 4096-byte prefix of the object, at an
    // address the kernel picks; only written through raw pointers below.
    let raw = unsafe {
        nix::sys::mman::mmap(
            None,
            std::num::NonZeroUsize::new(4096).unwrap(),
            nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
            nix::sys::mman::MapFlags::MAP_SHARED,
            object.as_fd(),
            0,
        )
    }
    .unwrap();
    // SAFETY: offset 8 is inside the 4096-byte mapping and 4-aligned.
    unsafe {
        raw.cast::<u8>()
            .add(field::VERSION as usize)
            .cast::<u32>()
            .write_volatile(7)
    };
    // SAFETY: our own mapping, no longer used.
    unsafe { nix::sys::mman::munmap(raw, 4096) }.unwrap();
    let e = err(RegionOptions::new().open_shm(&name));
    assert!(
        matches!(e, Error::VersionMismatch { found: 7, .. }),
        "{e:?}"
    );
    drop(region);
}

#[test]
fn error_layout_mismatch() {
    let name = ShmName::new("layout");
    let created = RegionOptions::new()
        .size(4096)
        .type_tag(0x1234)
        .create_shm(&name)
        .unwrap();
    let found = *created.layout();

    // More data than there is.
    let e = err(RegionOptions::new().size(1 << 20).open_shm(&name));
    match &e {
        Error::LayoutMismatch { expected, found: f } => {
            assert_eq!(**f, found);
            assert_eq!(expected.data_size, 1 << 20);
            assert_mentions(&e, &[&expected.to_string(), &found.to_string()]);
        }
        _ => panic!("{e:?}"),
    }
    // Another message type: the error names both.
    let e = err(RegionOptions::new().type_tag(0x9999).open_shm(&name));
    assert!(matches!(e, Error::TypeMismatch { .. }), "{e:?}");
    assert_mentions(&e, &["0x9999", "0x1234"]);
    // Another kind.
    let spsc = ipc_core::spsc::layout(1024, 64).unwrap();
    let e = err(RegionOptions::new().layout(spsc).open_shm(&name));
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e:?}");
    assert_mentions(&e, &["Spsc", "Raw"]);

    // The matching requests succeed.
    RegionOptions::new()
        .type_tag(0x1234)
        .open_shm(&name)
        .unwrap();
    RegionOptions::new().size(1024).open_shm(&name).unwrap();
    RegionOptions::new().open_shm(&name).unwrap();
}

#[test]
fn error_invalid_layout() {
    let dir = temp_dir();
    let path = dir.path().join("region");
    let original = make_region_file(&path, RegionOptions::new().size(4096), b"");
    let cases: [(u64, Vec<u8>, &str); 6] = [
        (
            field::KIND,
            7u32.to_le_bytes().to_vec(),
            "unknown region kind 7",
        ),
        (
            field::HEADER_SIZE,
            128u32.to_le_bytes().to_vec(),
            "header size 128",
        ),
        (
            field::TOTAL_SIZE,
            512u64.to_le_bytes().to_vec(),
            "header says 512 bytes",
        ),
        (
            field::DATA_OFFSET,
            100u64.to_le_bytes().to_vec(),
            "data offset 100",
        ),
        (
            field::DATA_SIZE,
            u64::MAX.to_le_bytes().to_vec(),
            "overruns",
        ),
        (field::CAPACITY, 64u64.to_le_bytes().to_vec(), "no capacity"),
    ];
    for (offset, bytes, reason) in cases {
        fs::write(&path, &original).unwrap();
        patch(&path, offset, &bytes);
        let e = err(RegionOptions::new().open_file(&path));
        assert!(
            matches!(e, Error::InvalidLayout { .. }),
            "offset {offset}: {e:?}"
        );
        assert_mentions(&e, &["invalid region layout", reason]);
    }
    // Not a regular file or memory object at all.
    let e = err(RegionOptions::new().open_file("/dev/null"));
    assert!(matches!(e, Error::InvalidLayout { .. }), "{e:?}");
    assert_mentions(&e, &["/dev/null", "not a regular file"]);
}

#[test]
fn error_truncated() {
    let dir = temp_dir();
    // Too small for a header.
    let small = dir.path().join("small");
    fs::write(&small, [0xAAu8; 100]).unwrap();
    let e = err(RegionOptions::new().open_file(&small));
    assert!(
        matches!(
            e,
            Error::Truncated {
                expected: HEADER_SIZE,
                actual: 100
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["256", "100"]);

    // A header claiming more than the file holds.
    let path = dir.path().join("region");
    let original = make_region_file(&path, RegionOptions::new().size(4096), b"");
    let len = original.len() as u64;
    patch(&path, field::TOTAL_SIZE, &(len * 2).to_le_bytes());
    let e = err(RegionOptions::new().open_file(&path));
    assert!(
        matches!(e, Error::Truncated { expected, actual } if expected == len * 2 && actual == len),
        "{e:?}"
    );
    assert_mentions(&e, &[&(len * 2).to_string(), &len.to_string()]);

    // A region file someone cut short after its creator left.
    fs::write(&path, &original).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = err(RegionOptions::new().open_file(&path));
    assert!(
        matches!(e, Error::Truncated { expected, actual } if expected == len && actual == len / 2),
        "{e:?}"
    );
}

/// Opens `path` with a 200 ms init timeout and checks it gives up in time.
fn assert_init_timeout(path: &Path) {
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let e = err(RegionOptions::new().init_timeout(timeout).open_file(path));
    let elapsed = started.elapsed();
    match e {
        Error::InitTimeout { waited } => {
            assert!(waited >= timeout, "gave up after {waited:?}");
            assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        }
        _ => panic!("{}: {e:?}", path.display()),
    }
    assert_mentions(&e, &["not initialised", "creator may have died"]);
}

#[test]
fn error_init_timeout() {
    let dir = temp_dir();
    // Sized, never written.
    let zeroes = dir.path().join("zeroes");
    fs::File::create(&zeroes).unwrap().set_len(4096).unwrap();
    assert_init_timeout(&zeroes);

    // Created, never sized.
    let empty = dir.path().join("empty");
    fs::File::create(&empty).unwrap();
    assert_init_timeout(&empty);

    // Every field written but the init word not yet published.
    let unpublished = dir.path().join("unpublished");
    let mut bytes = make_region_file(&unpublished, RegionOptions::new().size(4096), b"");
    bytes[field::INIT as usize..field::INIT as usize + 4].fill(0);
    fs::write(&unpublished, &bytes).unwrap();
    assert_init_timeout(&unpublished);

    // Only the magic written so far.
    let magic_only = dir.path().join("magic-only");
    let mut bytes = vec![0u8; 4096];
    let at = field::MAGIC as usize;
    bytes[at..at + 8].copy_from_slice(&MAGIC.to_le_bytes());
    fs::write(&magic_only, &bytes).unwrap();
    assert_init_timeout(&magic_only);
}

#[test]
fn opener_waits_for_a_late_publish() {
    let dir = temp_dir();
    let path = dir.path().join("region");
    let bytes = make_region_file(&path, RegionOptions::new().size(4096), b"late");
    let ready = read_u32(&bytes, field::INIT);
    patch(&path, field::INIT, &0u32.to_le_bytes());
    let opener = {
        let path = path.clone();
        std::thread::spawn(move || {
            RegionOptions::new()
                .init_timeout(CHILD_TIMEOUT)
                .open_file(&path)
        })
    };
    // Publish; the opener may be waiting already or not started yet: either
    // way it must end up with the region.
    patch(&path, field::INIT, &ready.to_le_bytes());
    let region = opener
        .join()
        .unwrap()
        .expect("opener sees the late publish");
    assert_holds(&region, 0, b"late");
}
