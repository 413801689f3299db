//! Named POSIX shm: sharing by name, exclusive creation, lifetime of the
//! name, and removal of stale names.

use std::fs;

use ipc_core::{remove_shm, remove_stale_shm, Error, RegionOptions};
use ipc_tests::name::ShmName;
use ipc_tests::spawn::SpawnedChild;

use crate::{
    assert_holds, assert_mentions, err, err_display, ok_details, report, run_peer, CHILD_TIMEOUT,
    PEER, REPLY_OFFSET,
};

#[test]
fn shm_region_is_shared_with_an_unrelated_process_and_removed_by_its_creator() {
    const MESSAGE: &str = "hello over named shm";
    const REPLY: &str = "named reply";
    let name = ShmName::new("roundtrip");
    let region = RegionOptions::new().size(8192).create_shm(&name).unwrap();
    region.write_at(0, MESSAGE.as_bytes()).unwrap();
    assert_eq!(fs::metadata(name.dev_shm()).unwrap().len(), region.len());

    let (_, report) = run_peer(&["shm-reply", &name, MESSAGE, REPLY]);
    assert_eq!(ok_details(&report), std::process::id().to_string());
    let mut reply = vec![0u8; REPLY.len()];
    region.read_at(REPLY_OFFSET, &mut reply).unwrap();
    assert_eq!(reply, REPLY.as_bytes());

    drop(region);
    assert!(
        !name.dev_shm().exists(),
        "the creator's drop must unlink the name"
    );
    let e = err(RegionOptions::new().open_shm(&name));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let (_, report) = run_peer(&["shm-reply", &name, MESSAGE, REPLY]);
    err_display(&report, "NotFound");
}

#[test]
fn create_shm_is_exclusive() {
    let name = ShmName::new("exclusive");
    let first = RegionOptions::new().size(4096).create_shm(&name).unwrap();
    first.write_at(0, b"first").unwrap();
    let e = err(RegionOptions::new().size(4096).create_shm(&name));
    assert!(
        matches!(&e, Error::AlreadyExists { name: n } if *n == *name),
        "{e:?}"
    );
    assert_mentions(&e, &[&name, "already exists"]);
    // The failed create must not have removed or touched the first object.
    let opened = RegionOptions::new().open_shm(&name).expect("still there");
    assert_holds(&opened, 0, b"first");
}

#[test]
fn persisted_shm_outlives_its_creator_until_removed() {
    let name = ShmName::new("persist");
    let region = RegionOptions::new()
        .size(4096)
        .persist(true)
        .create_shm(&name)
        .unwrap();
    region.write_at(0, b"kept").unwrap();
    drop(region);
    assert!(name.dev_shm().exists(), "persist(true) must keep the name");
    let opened = RegionOptions::new().open_shm(&name).unwrap();
    assert_holds(&opened, 0, b"kept");
    drop(opened);
    assert!(name.dev_shm().exists(), "an opener's drop must not unlink");

    remove_shm(&name).unwrap();
    assert!(!name.dev_shm().exists());
    let e = err(RegionOptions::new().open_shm(&name));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = remove_shm(&name).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn open_or_create_shm_opens_or_creates() {
    let name = ShmName::new("open-or-create");
    let options = RegionOptions::new().size(4096);

    // Creates when missing: this process owns it.
    let created = options.open_or_create_shm(&name).unwrap();
    assert_eq!(created.creator_pid(), std::process::id());
    created.write_at(0, b"first").unwrap();
    // Opens when present: same memory.
    let opened = options.open_or_create_shm(&name).unwrap();
    assert_holds(&opened, 0, b"first");
    drop(opened);
    assert!(name.dev_shm().exists(), "the opener must not unlink");
    drop(created);
    assert!(!name.dev_shm().exists(), "the creator unlinks");

    // Opens one another process created (and left behind).
    let (peer_pid, report) = run_peer(&["shm-create", &name, "made by the peer"]);
    assert_eq!(ok_details(&report), peer_pid.to_string());
    let opened = options.open_or_create_shm(&name).unwrap();
    assert_eq!(opened.creator_pid(), peer_pid);
    assert_holds(&opened, 0, b"made by the peer");
    drop(opened);
    assert!(
        name.dev_shm().exists(),
        "we did not create it, so we must not unlink it"
    );
}

#[test]
fn remove_stale_shm_removes_only_names_of_dead_creators() {
    // A creator that has exited (and been reaped).
    let stale = ShmName::new("stale-dead");
    let (_, report) = run_peer(&["shm-abandon", &stale, "orphan"]);
    ok_details(&report);
    assert!(stale.dev_shm().exists());
    assert!(remove_stale_shm(&stale).unwrap());
    assert!(!stale.dev_shm().exists());
    let e = err(RegionOptions::new().open_shm(&stale));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

    // A live creator (this process).
    let live = ShmName::new("stale-live");
    let region = RegionOptions::new().size(4096).create_shm(&live).unwrap();
    assert!(!remove_stale_shm(&live).unwrap());
    assert!(live.dev_shm().exists());
    RegionOptions::new()
        .open_shm(&live)
        .expect("live name left alone");
    drop(region);

    // Missing names are reported, not invented.
    let e = remove_stale_shm(&stale).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn remove_stale_shm_treats_an_unreaped_creator_as_dead() {
    // A creator that has exited but that its parent (us) has not reaped yet:
    // a zombie still answers kill(pid, 0), yet it will never come back.
    let name = ShmName::new("stale-zombie");
    let peer = SpawnedChild::run(PEER, &["shm-abandon", &name, "zombie's"]);
    peer.wait_ended(CHILD_TIMEOUT);
    assert!(
        remove_stale_shm(&name).unwrap(),
        "a creator that exited but is not reaped yet is dead"
    );
    assert!(!name.dev_shm().exists());
    ok_details(&report(peer));
}

#[test]
fn remove_stale_shm_removes_unfinished_regions_and_keeps_everything_else() {
    // Our magic but never published: the creator died while making it.
    let unfinished = ShmName::new("stale-unfinished");
    let mut bytes = vec![0u8; 4096];
    bytes[..8].copy_from_slice(&ipc_core::layout::MAGIC.to_le_bytes());
    fs::write(unfinished.dev_shm(), &bytes).unwrap();
    assert!(remove_stale_shm(&unfinished).unwrap());
    assert!(!unfinished.dev_shm().exists());

    // Created but never sized, or sized but all zeroes: nothing says these
    // are ours, so they are left alone (remove_shm removes them).
    let empty = ShmName::new("stale-empty");
    fs::File::create(empty.dev_shm()).unwrap();
    let e = remove_stale_shm(&empty).unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e:?}");
    assert!(empty.dev_shm().exists());
    let zeroes = ShmName::new("stale-zeroes");
    fs::File::create(zeroes.dev_shm())
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = remove_stale_shm(&zeroes).unwrap_err();
    assert!(matches!(e, Error::NotOurs { found_magic: 0 }), "{e:?}");
    assert!(zeroes.dev_shm().exists());

    // Somebody else's object: left alone.
    let foreign = ShmName::new("stale-foreign");
    fs::write(foreign.dev_shm(), "not a region of ours ".repeat(200)).unwrap();
    let e = remove_stale_shm(&foreign).unwrap_err();
    assert!(matches!(e, Error::NotOurs { .. }), "{e:?}");
    assert!(foreign.dev_shm().exists());
}

#[test]
fn remove_stale_shm_keeps_persisted_regions_and_names_in_use() {
    // Made to outlive its creator, which has exited: in use by design.
    let persisted = ShmName::new("stale-persisted");
    let (_, report) = run_peer(&["shm-create", &persisted, "kept"]);
    ok_details(&report);
    assert!(!remove_stale_shm(&persisted).unwrap());
    assert_holds(
        &RegionOptions::new().open_shm(&persisted).unwrap(),
        0,
        b"kept",
    );

    // Its creator exited, but another process still has it attached.
    let attached = ShmName::new("stale-attached");
    let (_, report) = run_peer(&["shm-create", &attached, "still used"]);
    ok_details(&report);
    let user = RegionOptions::new().open_shm(&attached).unwrap();
    assert!(!remove_stale_shm(&attached).unwrap());
    drop(user);
    // Once detached, a persisted region is still kept; remove_shm removes it.
    assert!(!remove_stale_shm(&attached).unwrap());
    remove_shm(&attached).unwrap();
}
