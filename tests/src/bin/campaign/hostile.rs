//! Hostile typed messages: bytes no honest sender of the type writes, sent
//! with a raw bytes channel (which opens any channel) to a typed receiver.
//! The receiver must return a decode error (`Decode`, or `WrongSize` for
//! plain old data) and go on: the next, honest message must arrive.
//!
//! Each case runs in its own worker process (`--worker hostile CASE RING`),
//! so a receiver that aborts (an allocation of the length the sender
//! wrote), overflows its stack (deep nesting) or panics is counted as that
//! failure, and the other cases still run.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use ipc_core::channel::{Channel, RecvError};
use ipc_tests::name::ShmName;
use ipc_tests::spawn::SpawnedChild;
use ipc_tests::typed::{Record, Sample};
use ipc_tests::wait::wait_for_end;
use serde::{Deserialize, Serialize};

use crate::report::{first_lines, Report};

const LIMIT: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(10);

/// A recursive type: a hostile message nests it as deep as its bytes allow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Tree {
    Leaf,
    Node(Box<Tree>),
}

/// bincode's varint: a value of 2^64 - 1 or less as 1, 3, 5 or 9 bytes
/// (marker 251, 252, 253 for u16, u32, u64).
fn varint(v: u64) -> Vec<u8> {
    match v {
        0..=250 => vec![v as u8],
        251..=0xffff => [&[251u8][..], &(v as u16).to_le_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[252u8][..], &(v as u32).to_le_bytes()].concat(),
        _ => [&[253u8][..], &v.to_le_bytes()].concat(),
    }
}

/// The cases: name, the receiver's type, and the hostile bytes.
fn cases() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let deep = {
        // Tree::Node is variant 1 (one byte), Tree::Leaf variant 0.
        let mut bytes = vec![1u8; (1 << 20) - 1];
        bytes.push(0);
        bytes
    };
    vec![
        ("string length 2^40", "String", varint(1 << 40)),
        ("string length 2^63", "String", varint(1 << 63)),
        ("string length 2^64-1", "String", varint(u64::MAX)),
        ("string length 2^31-1", "String", varint((1 << 31) - 1)),
        ("bytes length 2^40", "Vec<u8>", varint(1 << 40)),
        ("bytes length 2^64-1", "Vec<u8>", varint(u64::MAX)),
        ("Vec<u64> length 2^40", "Vec<u64>", varint(1 << 40)),
        (
            "record label length 2^40",
            "Record",
            [&[1u8, 1][..], &varint(1 << 40)].concat(),
        ),
        ("invalid UTF-8", "String", vec![4, 0xff, 0xfe, 0xc0, 0x80]),
        ("truncated UTF-8", "String", vec![2, 0xe2, 0x82]),
        // producer 1, seq 1, "" label, no values, variant 9 of 4.
        ("bad enum tag", "Record", vec![1, 1, 0, 0, 9]),
        (
            "enum tag 2^64-1",
            "Record",
            [&[1u8, 1, 0, 0][..], &varint(u64::MAX)].concat(),
        ),
        ("bad option tag", "Record", vec![1, 1, 0, 0, 3, 7, 5]),
        ("truncated record", "Record", vec![1, 1, 10, b'a']),
        ("empty message", "Record", vec![]),
        ("varint marker without its bytes", "Record", vec![253, 1, 2]),
        ("reserved varint marker 255", "Record", vec![255, 1]),
        ("deep nesting (2^20 levels)", "Tree", deep),
        (
            "POD one byte short",
            "Sample",
            vec![0u8; std::mem::size_of::<Sample>() - 1],
        ),
        (
            "POD half its size",
            "Sample",
            vec![0u8; std::mem::size_of::<Sample>() / 2],
        ),
        ("POD empty", "Sample", vec![]),
    ]
}

pub fn run(seed: u64, report: &mut Report) {
    let started = Instant::now();
    let exe = std::env::current_exe().expect("the campaign's own path");
    let mut passed = 0;
    for (index, (name, ty, _)) in cases().into_iter().enumerate() {
        for ring in ["spsc", "mpmc"] {
            let mut command = Command::new(&exe);
            command.args(["--worker", "hostile", &index.to_string(), ring]);
            // The message says what broke; the frames are the decoder's.
            command.env("RUST_BACKTRACE", "0");
            let child = SpawnedChild::spawn(command);
            let what = format!(
                "case {name:?} ({ty} receiver, {ring}; replay: campaign --worker hostile {index} {ring}; seed {seed} unused)"
            );
            if let Err(e) = wait_for_end(child.pid(), LIMIT) {
                report.fail("hostile: hang", format!("{what}: {e}"));
                continue;
            }
            let done = child.finish(Duration::ZERO);
            let status = done.status;
            if status.success() && done.stdout.starts_with("ok") {
                passed += 1;
                continue;
            }
            let kind = if status.signal() == Some(libc::SIGABRT) {
                if done.stderr.contains("overflow") {
                    "hostile: stack overflow (abort)"
                } else {
                    "hostile: abort"
                }
            } else if status.signal().is_some() {
                "hostile: killed by a signal"
            } else if status.code() == Some(101) {
                "hostile: panic"
            } else {
                "hostile: wrong result"
            };
            report.fail(
                kind,
                format!(
                    "{what}: {status}\nstdout: {}\nstderr: {}",
                    first_lines(&done.stdout, 5),
                    first_lines(&done.stderr, 8)
                ),
            );
        }
    }
    report.add("hostile: typed-message cases run", 2 * cases().len() as u64);
    report.add(
        "hostile: cases where the receiver reported and went on",
        passed,
    );
    report.timed("hostile", started.elapsed());
}

pub fn worker(args: &[String]) -> ExitCode {
    let (Some(index), Some(ring)) = (
        args.first().and_then(|a| a.parse::<usize>().ok()),
        args.get(1),
    ) else {
        eprintln!("usage: campaign --worker hostile CASE spsc|mpmc");
        return ExitCode::from(2);
    };
    let Some((name, ty, bytes)) = cases().into_iter().nth(index) else {
        return ExitCode::from(2);
    };
    let mpmc = ring == "mpmc";
    let outcome = match ty {
        "String" => typed_case(mpmc, &bytes, "honest".to_string()),
        "Vec<u8>" => typed_case(mpmc, &bytes, vec![1u8, 2, 3]),
        "Vec<u64>" => typed_case(mpmc, &bytes, vec![1u64, 1 << 40]),
        "Record" => typed_case(mpmc, &bytes, Record::new(1, 7)),
        "Tree" => typed_case(mpmc, &bytes, Tree::Node(Box::new(Tree::Leaf))),
        "Sample" => pod_case(mpmc, &bytes),
        _ => Err(format!("unknown type {ty}")),
    };
    match outcome {
        Ok(error) => {
            println!("ok {name}: {error}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("fail {name}: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `bytes` raw, then `honest` typed; the typed receiver must report
/// the first as undecodable and return the second. Returns the error shown.
fn typed_case<T>(mpmc: bool, bytes: &[u8], honest: T) -> Result<String, String>
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug + Clone,
{
    let name = ShmName::new("campaign-hostile");
    let max = (bytes.len() as u64).max(256) + 16;
    let builder = Channel::serde::<T>().capacity(4).max_message(max);
    let builder = if mpmc { builder.mpmc() } else { builder.spsc() };
    let ep = builder.create(&name).map_err(|e| format!("create: {e}"))?;
    let mut rx = ep.receiver().map_err(|e| format!("receiver: {e}"))?;
    {
        let raw = Channel::bytes()
            .open(&name)
            .map_err(|e| format!("raw open: {e}"))?;
        let mut tx = raw.sender().map_err(|e| format!("raw sender: {e}"))?;
        tx.send_timeout(bytes, WAIT)
            .map_err(|e| format!("raw send: {e}"))?;
    }
    let mut tx = ep.sender().map_err(|e| format!("typed sender: {e}"))?;
    let first = match rx.recv_timeout(WAIT) {
        Err(e @ RecvError::Decode { .. }) => e.to_string(),
        Err(e) => return Err(format!("the hostile message gave {e:?}, not Decode")),
        Ok(v) => return Err(format!("the hostile message decoded as {v:?}")),
    };
    tx.send_timeout(honest.clone(), WAIT)
        .map_err(|e| format!("honest send: {e}"))?;
    match rx.recv_timeout(WAIT) {
        Ok(v) if v == honest => Ok(first),
        other => Err(format!(
            "after the hostile message, the honest one gave {other:?}"
        )),
    }
}

/// As [`typed_case`], for a plain-old-data receiver: `WrongSize`, then the
/// honest sample, by copy and in place.
fn pod_case(mpmc: bool, bytes: &[u8]) -> Result<String, String> {
    let name = ShmName::new("campaign-hostile-pod");
    let builder = Channel::pod::<Sample>().capacity(4);
    let builder = if mpmc { builder.mpmc() } else { builder.spsc() };
    let ep = builder.create(&name).map_err(|e| format!("create: {e}"))?;
    let mut rx = ep.receiver().map_err(|e| format!("receiver: {e}"))?;
    {
        let raw = Channel::bytes()
            .open(&name)
            .map_err(|e| format!("raw open: {e}"))?;
        let mut tx = raw.sender().map_err(|e| format!("raw sender: {e}"))?;
        tx.send_timeout(bytes, WAIT)
            .map_err(|e| format!("raw send: {e}"))?;
        tx.send_timeout(bytes, WAIT)
            .map_err(|e| format!("raw send: {e}"))?;
    }
    let first = match rx.recv_timeout(WAIT) {
        Err(e @ RecvError::WrongSize { .. }) => e.to_string(),
        other => return Err(format!("the hostile message gave {other:?}, not WrongSize")),
    };
    match rx.recv_ref_timeout(WAIT) {
        Err(RecvError::WrongSize { .. }) => {}
        other => {
            return Err(format!(
                "in place, the hostile message gave {:?}",
                other.map(|g| *g)
            ))
        }
    }
    let mut tx = ep.sender().map_err(|e| format!("typed sender: {e}"))?;
    let honest = Sample::new(3, 9);
    tx.send_timeout(honest, WAIT)
        .map_err(|e| format!("honest send: {e}"))?;
    match rx.recv_timeout(WAIT) {
        Ok(v) if v == honest => Ok(first),
        other => Err(format!(
            "after the hostile message, the honest one gave {other:?}"
        )),
    }
}
