//! A one-thread tokio runtime in a process that forks: the async round
//! trip runs its side in one. The channel's async calls wait on tokio's
//! blocking pool, whose threads would stop the process from forking the
//! next measurement's child ([`crate::process::fork_child`] refuses a
//! threaded process); so dropping the runtime shuts it down and waits until
//! those threads are gone.

use std::future::Future;
use std::time::{Duration, Instant};

use ipc_tests::wait::WaitError;

use crate::process::await_single_thread;
use crate::{Error, Result, DEADLINE};

/// How long a dropped runtime's blocking threads get to leave.
const SHUTDOWN: Duration = Duration::from_secs(1);

/// A current-thread tokio runtime with timers; see the module docs.
#[derive(Debug)]
pub struct OneThread {
    runtime: Option<tokio::runtime::Runtime>,
}

impl OneThread {
    /// A new runtime on the calling thread; its blocking threads start
    /// when a call first waits, and inherit the caller's CPU pinning.
    pub fn new() -> Result<OneThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        Ok(OneThread {
            runtime: Some(runtime),
        })
    }

    /// Runs `work` to completion, or fails at `deadline` waiting for
    /// `what`.
    pub fn run_until<T>(
        &self,
        deadline: Instant,
        what: &'static str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let runtime = self.runtime.as_ref().expect("only taken in drop");
        let until = tokio::time::Instant::from_std(deadline);
        runtime
            .block_on(async { tokio::time::timeout_at(until, work).await })
            .unwrap_or(Err(Error::Wait(WaitError::Timeout {
                waiting_for: what,
                limit: DEADLINE,
            })))
    }
}

impl Drop for OneThread {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // A waiting call's blocking thread returns within the channel's
            // liveness tick; the pool's idle threads leave at once.
            runtime.shutdown_timeout(SHUTDOWN);
            // Threads that were joined may still be listed for a moment. If
            // one lingers, the next fork says so.
            let _ = await_single_thread(SHUTDOWN);
        }
    }
}
