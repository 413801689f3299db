//! A blocking call whose deadline has already passed returns `Timeout`
//! without a wait-path system call, whatever the wait strategy.
//!
//! A plain `main`, without the test harness: `wait::syscalls` counts the
//! whole process, so nothing else may run beside the check.

use std::time::{Duration, Instant};

use ipc_core::wait::{syscalls, WaitStrategy};
use ipc_core::{mpmc, spsc, RegionOptions};

fn main() {
    let strategies = [
        WaitStrategy::BusyPoll,
        WaitStrategy::default(),
        WaitStrategy::Park,
    ];
    for strategy in strategies {
        let past = Instant::now() - Duration::from_secs(1);

        let region = RegionOptions::new()
            .layout(spsc::layout(4096, 64).unwrap())
            .create_anonymous()
            .unwrap();
        let (mut tx, mut rx) = spsc::channel(region).unwrap();
        tx.set_wait_strategy(strategy);
        rx.set_wait_strategy(strategy);
        let before = syscalls();
        assert!(matches!(
            rx.recv_deadline(past).map(|m| m.len()),
            Err(spsc::RecvError::Timeout)
        ));
        while tx.try_send(&[0; 64]).is_ok() {}
        assert!(matches!(
            tx.send_deadline(&[0; 64], past),
            Err(spsc::SendError::Timeout)
        ));
        assert_eq!(syscalls(), before, "SPSC, {strategy:?}");

        let region = RegionOptions::new()
            .layout(mpmc::layout(8, 64).unwrap())
            .create_anonymous()
            .unwrap();
        let (mut tx, mut rx) = mpmc::channel(region).unwrap();
        tx.set_wait_strategy(strategy);
        rx.set_wait_strategy(strategy);
        let before = syscalls();
        assert!(matches!(
            rx.recv_deadline(past).map(|m| m.len()),
            Err(mpmc::RecvError::Timeout)
        ));
        while tx.try_send(&[0; 64]).is_ok() {}
        assert!(matches!(
            tx.send_deadline(&[0; 64], past),
            Err(mpmc::SendError::Timeout)
        ));
        assert_eq!(syscalls(), before, "MPMC, {strategy:?}");
    }
    println!("past deadlines: no wait syscall with any strategy");
}
