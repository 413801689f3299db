//! Permissions and mapping options: modes whatever the umask, zeroing on
//! drop, and the mapping options on every backing.

use std::fs;

use ipc_core::layout::HEADER_SIZE;
use ipc_core::{HugePages, RegionOptions};
use ipc_tests::name::ShmName;
use tempfile::TempDir;

use crate::{mode_of, ok_details, run_peer, temp_dir};

/// Creates a shm object and a file region from a peer running with `umask`
/// and `mode` ("default" for none) and returns their modes.
fn modes_created_with(umask: &str, mode: &str, dir: &TempDir) -> (u32, u32) {
    let name = ShmName::new(&format!("mode-{umask}-{mode}"));
    let (_, report) = run_peer(&["create-umask", umask, mode, "shm", &name]);
    ok_details(&report);
    let shm_mode = mode_of(&name.dev_shm());
    let path = dir.path().join(format!("mode-{umask}-{mode}"));
    let (_, report) = run_peer(&["create-umask", umask, mode, "file", path.to_str().unwrap()]);
    ok_details(&report);
    (shm_mode, mode_of(&path))
}

#[test]
fn default_mode_is_0600_whatever_the_umask() {
    let dir = temp_dir();
    for umask in ["077", "000", "022"] {
        assert_eq!(
            modes_created_with(umask, "default", &dir),
            (0o600, 0o600),
            "umask {umask}"
        );
    }
}

#[test]
fn custom_mode_is_applied_exactly() {
    let dir = temp_dir();
    for umask in ["077", "000"] {
        for mode in [0o640, 0o666, 0o400] {
            let mode_arg = format!("{mode:o}");
            assert_eq!(
                modes_created_with(umask, &mode_arg, &dir),
                (mode, mode),
                "umask {umask}, mode {mode_arg}"
            );
        }
    }
}

#[test]
fn zero_on_drop_clears_the_memory_only_for_the_creator() {
    let name = ShmName::new("zero-on-drop");
    let options = RegionOptions::new()
        .size(4096)
        .persist(true)
        .zero_on_drop(true);
    let created = options.create_shm(&name).unwrap();
    created.write_at(0, b"secret").unwrap();
    // An opener asking for the same never zeroes: it does not own the memory.
    drop(options.open_shm(&name).unwrap());
    let bytes = fs::read(name.dev_shm()).unwrap();
    assert_eq!(&bytes[HEADER_SIZE as usize..][..6], b"secret");
    drop(created);
    let bytes = fs::read(name.dev_shm()).unwrap();
    assert!(
        bytes.iter().all(|&b| b == 0),
        "the creator's drop must zero the object"
    );
}

#[test]
fn mapping_options_are_accepted_on_every_backing() {
    let dir = temp_dir();
    let name = ShmName::new("options");
    let options = RegionOptions::new()
        .size(1 << 16)
        .populate(true)
        .dont_dump(true)
        .huge_pages(HugePages::BestEffort);
    let regions = [
        options.create_anonymous().unwrap(),
        options.create_memfd("ipc-tests-options").unwrap(),
        options.create_shm(&name).unwrap(),
        options.create_file(dir.path().join("region")).unwrap(),
        options.open_shm(&name).unwrap(),
        options.open_file(dir.path().join("region")).unwrap(),
    ];
    for region in &regions {
        region.write_at(region.data_len() - 3, b"end").unwrap();
        region
            .atomic_u64(0)
            .unwrap()
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // The opened ones share memory with the created ones.
    assert_eq!(
        regions[4]
            .atomic_u64(0)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        regions[5]
            .atomic_u64(0)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn in_process_creation_applies_the_mode() {
    let dir = temp_dir();
    let name = ShmName::new("mode-in-process");
    let _shm = RegionOptions::new()
        .size(4096)
        .mode(0o640)
        .create_shm(&name)
        .unwrap();
    assert_eq!(mode_of(&name.dev_shm()), 0o640);
    let path = dir.path().join("region");
    let _file = RegionOptions::new().size(4096).create_file(&path).unwrap();
    assert_eq!(mode_of(&path), 0o600);
}
