//! A limit on a whole test: if the test is still running when its
//! [`Watchdog`] fires, the test process is aborted with a message, so a
//! call that never returns (a lost wake-up, a deadline ignored) fails the
//! run instead of hanging it.
//!
//! ```
//! use std::time::Duration;
//! use ipc_tests::watchdog::Watchdog;
//!
//! let _limit = Watchdog::new("a quick test", Duration::from_secs(60));
//! // ... the test; the watchdog is called off when `_limit` drops.
//! ```

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Aborts the process unless dropped within its limit.
#[derive(Debug)]
pub struct Watchdog {
    /// Dropping it calls the watchdog off.
    cancel: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts a watchdog for `what` (named in the message) that aborts the
    /// process after `limit`.
    pub fn new(what: &'static str, limit: Duration) -> Watchdog {
        let (cancel, called_off) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = called_off.recv_timeout(limit) {
                eprintln!("watchdog: {what} still running after {limit:?}; aborting");
                std::process::abort();
            }
        });
        Watchdog {
            cancel: Some(cancel),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    /// Set in the copy of this test binary that plays the hung test.
    const HUNG: &str = "IPC_TESTS_WATCHDOG_HUNG";

    #[test]
    fn a_test_that_outlives_its_watchdog_is_aborted() {
        if std::env::var_os(HUNG).is_some() {
            let _limit = Watchdog::new("the hung test", Duration::from_millis(50));
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        let started = Instant::now();
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "watchdog::tests::a_test_that_outlives_its_watchdog_is_aborted",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(HUNG, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{stderr}");
        assert!(stderr.contains("the hung test still running"), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_watchdog_dropped_in_time_does_nothing() {
        let limit = Watchdog::new("a quick test", Duration::from_millis(100));
        drop(limit);
        std::thread::sleep(Duration::from_millis(200));
    }
}
