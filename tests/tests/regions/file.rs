//! File-backed regions: they outlive their creator, and never follow
//! symlinks.

use std::fs;
use std::os::unix::fs::symlink;

use ipc_core::layout::HEADER_SIZE;
use ipc_core::{Error, Kind, RegionOptions};

use crate::{assert_holds, assert_mentions, err, make_region_file, ok_details, run_peer, temp_dir};

#[test]
fn file_region_outlives_its_creator_process() {
    let dir = temp_dir();
    let path = dir.path().join("region");
    let path_str = path.to_str().unwrap();
    let (peer_pid, report) = run_peer(&["file-create", path_str, "written by the peer"]);
    let len: u64 = ok_details(&report).parse().unwrap();
    assert!(path.exists(), "the file must stay after its creator exits");
    assert_eq!(fs::metadata(&path).unwrap().len(), len);

    let region = RegionOptions::new().open_file(&path).expect("reopen");
    assert_eq!(region.creator_pid(), peer_pid);
    assert_eq!(region.len(), len);
    assert_eq!(region.layout().kind, Kind::Raw);
    assert_holds(&region, 0, b"written by the peer");
    region.write_at(0, b"rewritten").unwrap();
    drop(region);
    assert!(path.exists(), "an opener's drop must not remove the file");
    let bytes = fs::read(&path).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE as usize..HEADER_SIZE as usize + 9],
        b"rewritten"
    );

    // Exclusive creation: the existing file is refused and left intact.
    let e = err(RegionOptions::new().size(4096).create_file(&path));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert_mentions(&e, &[path_str]);
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn file_regions_never_follow_symlinks() {
    let dir = temp_dir();
    let target = dir.path().join("target");
    let original = make_region_file(&target, RegionOptions::new().size(4096), b"target");
    let link = dir.path().join("link");
    symlink(&target, &link).unwrap();
    let e = err(RegionOptions::new().open_file(&link));
    assert!(matches!(e, Error::SymbolicLink { .. }), "{e:?}");
    assert_mentions(&e, &[link.to_str().unwrap(), "symbolic link"]);

    // Creating through a dangling link must not create its target.
    let nowhere = dir.path().join("nowhere");
    let dangling = dir.path().join("dangling");
    symlink(&nowhere, &dangling).unwrap();
    let e = err(RegionOptions::new().size(4096).create_file(&dangling));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert!(!nowhere.exists());
    // Nor through a link to an existing region.
    let e = err(RegionOptions::new().size(4096).create_file(&link));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert_eq!(fs::read(&target).unwrap(), original);
}

/// Nor is a symbolic link anywhere else in the path: a directory on the
/// way that is a link (which whoever could write its parent may have put
/// there) is refused, for opening and for creating, and nothing is created
/// where it points.
#[test]
fn file_regions_never_follow_symlinks_in_directories() {
    let dir = temp_dir();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    make_region_file(&real.join("ring"), RegionOptions::new().size(4096), b"real");
    let linked = dir.path().join("linked");
    symlink(&real, &linked).unwrap();
    let through = linked.join("ring");
    let e = err(RegionOptions::new().open_file(&through));
    assert!(matches!(e, Error::SymbolicLink { .. }), "{e:?}");
    assert_mentions(&e, &[through.to_str().unwrap(), "symbolic link"]);
    let e = err(RegionOptions::new()
        .size(4096)
        .create_file(linked.join("new")));
    assert!(matches!(e, Error::SymbolicLink { .. }), "{e:?}");
    assert!(!real.join("new").exists());
    // A link higher up too, and through `..`.
    let deeper = linked.join("..").join("linked").join("ring");
    let e = err(RegionOptions::new().open_file(&deeper));
    assert!(matches!(e, Error::SymbolicLink { .. }), "{e:?}");
    // Paths without links still work, relative ones and `..` included.
    let plain = dir.path().join("real").join("..").join("real").join("ring");
    RegionOptions::new().open_file(&plain).unwrap();
}
