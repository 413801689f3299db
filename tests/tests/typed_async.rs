//! Async channels across real processes: a tokio program receiving from,
//! and sending to, an unrelated process (`typed-peer`) over a named
//! channel, on a runtime of one thread that must stay free while it waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ipc_core::channel::{Builder, Channel, RecvError, Serde};
use ipc_tests::name::ShmName;
use ipc_tests::spawn::SpawnedChild;
use ipc_tests::tagged::{Stream, Tally};
use ipc_tests::typed::Record;

const PEER: &str = env!("CARGO_BIN_EXE_typed-peer");
const RECORDS: u64 = 200_000;
/// Longest a peer may run; only keeps a broken test from hanging.
const RUN: Duration = Duration::from_secs(180);

fn records(mpmc: bool) -> Builder<Record, Serde> {
    // Small, so that both sides keep waiting for each other.
    let builder = Channel::serde::<Record>().capacity(64).max_message(256);
    if mpmc {
        builder.mpmc()
    } else {
        builder.spsc()
    }
}

/// Runs `test` on a one-thread runtime, with a task beside it that ticks
/// every millisecond; fails after `RUN` rather than hanging (a blocked
/// runtime cannot time itself out). Returns how often the ticker ran.
fn on_one_thread<F>(test: F) -> u64
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let ticks = Arc::new(AtomicU64::new(0));
    let (done, finished) = mpsc::channel();
    let ticked = ticks.clone();
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticked.fetch_add(1, Ordering::Relaxed);
                }
            });
            test.await;
            ticker.abort();
        });
        let _ = done.send(());
    });
    match finished.recv_timeout(RUN) {
        Ok(()) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(runner.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the runtime hung"),
    }
    ticks.load(Ordering::Relaxed)
}

#[test]
fn a_tokio_receiver_gets_every_record_from_an_unrelated_process() {
    for mpmc in [false, true] {
        let name = ShmName::new(if mpmc {
            "async-rx-mpmc"
        } else {
            "async-rx-spsc"
        });
        let endpoint = records(mpmc).create(&name).unwrap();
        let mut rx = endpoint.receiver().unwrap();
        let peer = SpawnedChild::run(PEER, &["produce", &name, "0", &RECORDS.to_string()]);
        let ticks = on_one_thread(async move {
            for seq in 0..RECORDS {
                let record = rx.recv_async().await;
                assert_eq!(record, Ok(Record::new(0, seq)), "record {seq}, mpmc {mpmc}");
            }
            // The peer leaves once it has sent everything.
            assert_eq!(rx.recv_async().await, Err(RecvError::Disconnected));
        });
        peer.finish(RUN).assert_success();
        // The ticker shared the only thread with the waiting receiver.
        assert!(ticks > 0, "the runtime's thread was held while waiting");
    }
}

#[test]
fn a_tokio_sender_waits_for_room_an_unrelated_process_makes() {
    for mpmc in [false, true] {
        let name = ShmName::new(if mpmc {
            "async-tx-mpmc"
        } else {
            "async-tx-spsc"
        });
        let endpoint = records(mpmc).create(&name).unwrap();
        let mut tx = endpoint.sender().unwrap();
        let consumer = SpawnedChild::run(PEER, &["consume", &name]);
        on_one_thread(async move {
            for seq in 0..RECORDS {
                tx.send_async(Record::new(0, seq))
                    .await
                    .unwrap_or_else(|e| panic!("record {seq}: {e}"));
            }
            // Dropping the sender tells the consumer it is done.
        });
        let done = consumer.finish(RUN);
        done.assert_success();
        let tally = Tally::parse(done.stdout.trim()).unwrap();
        assert_eq!(*tally.stream(0), Stream::of(0, 0..RECORDS), "mpmc {mpmc}");
        assert_eq!(tally.total(), RECORDS);
    }
}

#[test]
fn a_tokio_receiver_learns_that_a_killed_sender_is_gone() {
    let name = ShmName::new("async-killed");
    let endpoint = records(false).create(&name).unwrap();
    let mut rx = endpoint.receiver().unwrap();
    let mut peer = SpawnedChild::run(PEER, &["send-then-hang", &name, "20"]);
    assert_eq!(peer.read_line(RUN).trim(), "sent 20");
    nix::sys::signal::kill(peer.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    on_one_thread(async move {
        for seq in 0..20 {
            assert_eq!(rx.recv_async().await, Ok(Record::new(3, seq)));
        }
        // Noticed on a liveness tick, while waiting off the runtime.
        assert_eq!(rx.recv_async().await, Err(RecvError::Disconnected));
    });
}

#[test]
fn short_async_timeouts_in_a_loop_notice_a_killed_sender() {
    for mpmc in [false, true] {
        let name = ShmName::new("async-short");
        let endpoint = records(mpmc).create(&name).unwrap();
        let mut rx = endpoint.receiver().unwrap();
        let mut peer = SpawnedChild::run(PEER, &["send-then-hang", &name, "20"]);
        assert_eq!(peer.read_line(RUN).trim(), "sent 20");
        nix::sys::signal::kill(peer.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
        peer.wait_ended(RUN);
        on_one_thread(async move {
            for seq in 0..20 {
                assert_eq!(rx.recv_async().await, Ok(Record::new(3, seq)));
            }
            // Each wait is cancelled before a liveness tick: the call checks
            // its peers when it starts waiting.
            let killed = std::time::Instant::now();
            let short = Duration::from_millis(5);
            let result = loop {
                match tokio::time::timeout(short, rx.recv_async()).await {
                    Err(_elapsed) if killed.elapsed() < Duration::from_secs(2) => {}
                    Err(_elapsed) => panic!("mpmc {mpmc}: still waiting 2 s after the kill"),
                    Ok(result) => break result,
                }
            };
            assert_eq!(result, Err(RecvError::Disconnected), "mpmc {mpmc}");
        });
    }
}
