//! Cross-process benchmark: the SPSC ring vs a pipe vs a Unix stream socket
//! vs the cache-line floor and a raw shared-memory copy stream. The engine
//! is the `ipc_benches` library (`benches/src`); this is its entry point.
//!
//! `cargo bench -p ipc-benches` runs the full measurement (about a minute),
//! prints the tables and the targets, and writes them as Markdown to
//! `target/bench-results.md`. Without `--bench` (as under
//! `cargo test --benches`) it runs a smoke version of a second or two that
//! verifies every byte, so the benchmark never rots.

use std::path::PathBuf;
use std::process::ExitCode;

use ipc_benches::{run, Mode};

fn main() -> ExitCode {
    let mode = if std::env::args().any(|a| a == "--bench") {
        Mode::Full
    } else {
        Mode::Smoke
    };
    let report = match run(mode, |step| eprintln!("ring bench: {step}")) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("ring bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.text());
    if mode == Mode::Full {
        let path = results_path();
        match std::fs::write(&path, report.markdown()) {
            Ok(()) => println!("Markdown written to {}", path.display()),
            Err(e) => {
                eprintln!("could not write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// `target/bench-results.md`: the bench executable lives in
/// `target/<profile>/deps/`.
fn results_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-results.md")
}
