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

impl SpawnedChild {
    /// Reads the next line the program writes to stdout (without its
    /// newline), waiting up to `limit` for it: for programs that say when
    /// they have reached a point of interest and then wait there. Panics,
    /// after killing the program and showing its stderr, if no whole line
    /// comes in time.
    ///
    /// Reads a byte at a time, so nothing past the line is taken from the
    /// pipe: [`finish`](Self::finish) still collects the rest.
    pub fn read_line(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut line = Vec::new();
        let outcome = loop {
            let Some(stdout) = self.child.stdout.as_mut() else {
                break Err("stdout was collected already".to_string());
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let mut poll = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(stdout),
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid `pollfd`, for the duration of the call.
            let ready = unsafe { libc::poll(&mut poll, 1, millis) };
            if ready == 0 {
                break Err(format!("no line within {limit:?}"));
            }
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(format!("poll: {e}"));
            }
            let mut byte = [0u8; 1];
            match stdout.read(&mut byte) {
                Ok(0) => break Err("stdout closed".to_string()),
                Ok(_) if byte[0] == b'\n' => break Ok(()),
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(format!("reading stdout: {e}")),
            }
        };
        let line = String::from_utf8_lossy(&line).into_owned();
        if let Err(why) = outcome {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let mut stderr = String::new();
            if let Some(mut err) = self.child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            panic!(
                "`{}`: {why} (partial line {line:?}); stderr:\n{stderr}",
                self.what
            );
        }
        line
    }
}

/// Waits up to `limit` for every program in `children` to end, watching
/// them all at once, and collects their output. The first to fail (exit
/// other than 0) fails the call at once, with its output; the others are
/// then killed with their guards. Panics at the limit too.
pub fn finish_all(children: Vec<SpawnedChild>, limit: Duration) -> Vec<Finished> {
    let deadline = Instant::now() + limit;
    let mut running: Vec<Option<SpawnedChild>> = children.into_iter().map(Some).collect();
    let mut done: Vec<Option<Finished>> = running.iter().map(|_| None).collect();
    let mut wait = crate::wait::BoundedWait::new("the children to exit", limit);
    while done.iter().any(Option::is_none) {
        let mut progress = false;
        for (slot, finished) in running.iter_mut().zip(&mut done) {
            if slot.as_ref().is_some_and(|child| !child.is_running()) {
                let child = slot.take().expect("checked above");
                let result = child.finish(Duration::ZERO);
                result.assert_success();
                *finished = Some(result);
                progress = true;
            }
        }
        if progress {
            wait.reset();
        } else if wait.snooze().is_err() || Instant::now() > deadline {
            let left: Vec<&str> = running.iter().flatten().map(|c| c.what()).collect();
            panic!("still running after {limit:?}: {left:?}");
        }
    }
    done.into_iter().flatten().collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    #[test]
    fn lines_are_read_as_they_come_and_finish_collects_the_rest() {
        let mut child = SpawnedChild::run("sh", &["-c", "echo first; echo second; echo third"]);
        assert_eq!(child.read_line(LIMIT), "first");
        assert_eq!(child.read_line(LIMIT), "second");
        let done = child.finish(LIMIT);
        done.assert_success();
        assert_eq!(done.stdout, "third\n");
    }

    #[test]
    #[should_panic(expected = "no line within")]
    fn a_program_that_says_nothing_fails_the_read_at_the_limit() {
        let mut child = SpawnedChild::run("sleep", &["30"]);
        child.read_line(Duration::from_millis(50));
    }

    #[test]
    #[should_panic(expected = "failed (exit status: 3)")]
    fn the_first_failure_among_many_fails_at_once() {
        let children = vec![
            SpawnedChild::run("sleep", &["30"]),
            SpawnedChild::run("sh", &["-c", "exit 3"]),
        ];
        // Were the sleeper awaited first, this would fail only at the limit,
        // with another message.
        finish_all(children, Duration::from_secs(20));
    }
}
