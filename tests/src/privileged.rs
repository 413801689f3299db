//! Tests that need root (mount or pid namespaces, another user's objects)
//! never pass silently: unprivileged, such a test says `skipped` and
//! returns (`scripts/test.sh` also lists them before the run, since the
//! test harness hides a passing test's output); in CI (`CI=true`, which
//! runs as root) a privileged test that cannot run fails instead.
//!
//! ```
//! use ipc_tests::privileged;
//!
//! // SAFETY: geteuid has no preconditions.
//! let root = unsafe { libc::geteuid() } == 0;
//! if privileged::runs(root, "an example: needs root") {
//!     // the privileged part
//! }
//! ```

/// Whether this run must run every privileged test (`CI` set to `true`).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether a privileged test may go on: `able` says whether this process
/// can do what it needs, `what` names the test and the privilege. When it
/// cannot: in CI, panics (the test fails); elsewhere prints `skipped:` and
/// returns false.
#[track_caller]
pub fn runs(able: bool, what: &str) -> bool {
    if able {
        return true;
    }
    if required() {
        panic!("CI=true but this privileged test cannot run: {what}");
    }
    eprintln!("skipped: {what}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_able_test_runs() {
        assert!(runs(true, "a test that can run"));
    }

    #[test]
    fn an_unable_test_fails_in_ci_and_is_skipped_elsewhere() {
        // The decision, without touching this process's environment: a
        // child with and without CI=true.
        if let Some(ci) = std::env::var_os("IPC_TESTS_PRIVILEGED_PROBE") {
            let _ = ci;
            runs(false, "the probe");
            return;
        }
        let run = |ci: &str| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "privileged::tests::an_unable_test_fails_in_ci_and_is_skipped_elsewhere",
                    "--nocapture",
                ])
                .env("IPC_TESTS_PRIVILEGED_PROBE", "1")
                .env("CI", ci)
                .output()
                .unwrap()
        };
        let in_ci = run("true");
        assert!(!in_ci.status.success());
        assert!(String::from_utf8_lossy(&in_ci.stderr).contains("cannot run: the probe"));
        let local = run("");
        assert!(local.status.success());
        assert!(String::from_utf8_lossy(&local.stderr).contains("skipped: the probe"));
    }
}
