//! A ring in shared memory made by the `shared_memory` crate, between two
//! unrelated processes that each map it with that crate.

use std::time::Duration;

use ipc_core::spsc::{self, Consumer, RecvError};
use ipc_core::{Error, RegionOptions};
use ipc_tests::payload::PayloadGen;
use ipc_tests::spawn::SpawnedChild;
use shared_memory::ShmemConf;

const PEER: &str = env!("CARGO_BIN_EXE_shmem-peer");
const STALL: Duration = Duration::from_secs(20);

#[test]
fn a_ring_in_a_shared_memory_object_carries_messages_to_another_process() {
    let (count, max, seed) = (200_000u64, 512usize, 7u64);
    let options = RegionOptions::new().layout(spsc::layout(1 << 16, max as u64).unwrap());
    let shmem = ShmemConf::new()
        .size(options.region_size().unwrap() as usize)
        .create()
        .unwrap();
    let region = options.create_in_shmem(&shmem).unwrap();
    let mut consumer = Consumer::attach(region).unwrap();
    let peer = SpawnedChild::run(
        PEER,
        &[
            "produce",
            shmem.get_os_id(),
            &count.to_string(),
            &max.to_string(),
            &seed.to_string(),
        ],
    );
    let gen = PayloadGen::random(seed, max);
    for seq in 0..count {
        let msg = consumer
            .recv_timeout(STALL)
            .unwrap_or_else(|e| panic!("message {seq}: {e}"));
        gen.verify(seq, &msg)
            .unwrap_or_else(|e| panic!("message {seq}: {e}"));
    }
    peer.finish(STALL).assert_success();
    assert_eq!(
        consumer.recv_timeout(STALL).map(|m| m.len()),
        Err(RecvError::Disconnected)
    );
}

#[test]
fn another_process_cannot_open_a_region_that_is_not_there_yet() {
    // An object made with the crate but holding no region: the peer's open
    // waits for a header that never comes, and says so.
    let shmem = ShmemConf::new().size(1 << 16).create().unwrap();
    let peer = SpawnedChild::run(PEER, &["produce", shmem.get_os_id(), "1", "64", "1"]);
    let finished = peer.finish(STALL);
    assert!(!finished.status.success(), "{finished:?}");
    assert!(finished.stderr.contains("header"), "{}", finished.stderr);
    // And this process refuses to make a region in one it did not create.
    let theirs = ShmemConf::new().os_id(shmem.get_os_id()).open().unwrap();
    let options = RegionOptions::new().layout(spsc::layout(4096, 64).unwrap());
    assert!(matches!(
        options.create_in_shmem(&theirs),
        Err(Error::AlreadyExists { .. })
    ));
}
