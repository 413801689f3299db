//! The unrelated process of the `shared_memory` interop tests: opens, with
//! the `shared_memory` crate, an object the test process made with it, and
//! produces into the ring there.
//!
//! ```text
//! shmem-peer produce OS_ID COUNT MAX_LEN SEED   open OS_ID, send COUNT messages
//! ```
//! Exit codes: 0 success, 1 failure (printed), 2 bad arguments.

use std::process::ExitCode;
use std::time::Duration;

use ipc_core::spsc::Producer;
use ipc_core::RegionOptions;
use ipc_tests::payload::PayloadGen;
use shared_memory::ShmemConf;

/// Longest a blocked send waits for room before giving up.
const STALL: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["produce", os_id, count, max, seed] => produce(os_id, count, max, seed),
        _ => {
            eprintln!("usage: shmem-peer produce OS_ID COUNT MAX_LEN SEED");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmem-peer: {e}");
            ExitCode::from(1)
        }
    }
}

fn produce(
    os_id: &str,
    count: &str,
    max: &str,
    seed: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let (count, max, seed): (u64, usize, u64) = (count.parse()?, max.parse()?, seed.parse()?);
    let shmem = ShmemConf::new().os_id(os_id).open()?;
    let region = RegionOptions::new().open_in_shmem(&shmem)?;
    let mut producer = Producer::attach(region)?;
    let gen = PayloadGen::random(seed, max);
    for seq in 0..count {
        let mut grant = producer
            .reserve_deadline(gen.len_of(seq), std::time::Instant::now() + STALL)
            .map_err(|e| format!("message {seq}: {e}"))?;
        gen.fill(seq, &mut grant);
        grant.commit();
    }
    Ok(())
}
