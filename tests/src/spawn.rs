//! A spawned program (an unrelated process: `exec`ed, sharing no memory with
//! the test) that cannot outlive its test.
//!
//! These guards serve tests: a failure panics with the command line in the
//! message, which is how a test reports it.
//!
//! ```
//! use std::process::Command;
//! use std::time::Duration;
//! use ipc_tests::spawn::SpawnedChild;
//!
//! let mut command = Command::new("echo");
//! command.arg("hello");
//! let done = SpawnedChild::spawn(command).finish(Duration::from_secs(30));
//! done.assert_success();
//! assert_eq!(done.stdout, "hello\n");
//! ```

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use crate::wait::{ended, wait_for_end};

/// A running program with its stdin closed and its stdout and stderr piped;
/// killed and reaped on drop unless [`finish`](SpawnedChild::finish)ed.
#[derive(Debug)]
pub struct SpawnedChild {
    child: Child,
    /// The command line, for messages.
    what: String,
    started: Instant,
}

/// What a finished program left behind.
#[derive(Debug)]
pub struct Finished {
    /// Its command line.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// From spawning to its exit being seen.
    pub took: Duration,
}

impl SpawnedChild {
    /// Starts `command` with stdin from `/dev/null` and stdout and stderr
    /// piped; panics if it cannot start.
    pub fn spawn(mut command: Command) -> SpawnedChild {
        let what = format!("{command:?}");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        SpawnedChild {
            child,
            what,
            started: Instant::now(),
        }
    }

    /// Starts `program` with `args`, as [`spawn`](Self::spawn) does.
    pub fn run(program: &str, args: &[&str]) -> SpawnedChild {
        let mut command = Command::new(program);
        command.args(args);
        SpawnedChild::spawn(command)
    }

    /// The command line, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The program's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// How it ended, or `None` while it runs; it stays unreaped, so its pid
    /// cannot be reused meanwhile.
    pub fn ended(&self) -> Option<WaitStatus> {
        ended(self.pid()).unwrap_or_else(|e| panic!("watching {}: {e}", self.what))
    }

    /// Whether it is still running.
    pub fn is_running(&self) -> bool {
        self.ended().is_none()
    }

    /// Waits up to `limit` until it has ended, leaving it unreaped (a zombie
    /// until [`finish`](Self::finish)); panics if it is still running then.
    pub fn wait_ended(&self, limit: Duration) -> WaitStatus {
        wait_for_end(self.pid(), limit)
            .unwrap_or_else(|e| panic!("`{}`: {e}; it will be killed", self.what))
    }

    /// Waits up to `limit` for it to end, reaps it and collects its output;
    /// panics (after killing it) if it is still running then.
    ///
    /// The output is read once it has ended: a program that writes more than
    /// a pipe holds (64 KiB) blocks and so fails here by running too long.
    pub fn finish(mut self, limit: Duration) -> Finished {
        self.wait_ended(limit);
        let took = self.started.elapsed();
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("reaping {}: {e}", self.what));
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout)
                .unwrap_or_else(|e| panic!("stdout of {}: {e}", self.what));
        }
        if let Some(mut err) = self.child.stderr.take() {
            err.read_to_string(&mut stderr)
                .unwrap_or_else(|e| panic!("stderr of {}: {e}", self.what));
        }
        Finished {
            command: std::mem::take(&mut self.what),
            status,
            stdout,
            stderr,
            took,
        }
    }
}

impl Finished {
    /// Panics, showing its output, unless it exited with status 0.
    #[track_caller]
    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "`{}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

impl Drop for SpawnedChild {
    fn drop(&mut self) {
        // After `finish` the child is reaped and `Child` knows it: both calls
        // then do nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
