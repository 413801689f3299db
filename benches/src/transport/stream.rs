//! Byte streams between the two processes: a pipe (one per direction for
//! round trips) and a Unix stream socket pair, with one `write` per message.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::message::{check, prepare, stamp};
use crate::process::{finish, fork_child, pin_child};
use crate::stats::{time_batches, Throughput};
use crate::wait::Gate;
use crate::workload::{RoundTrip, Stream};
use crate::{Error, Result, DEADLINE};

/// Size of the buffer the one-way streams read into.
const READ_CHUNK: usize = 256 * 1024;

/// Round trips over two pipes.
pub fn pipe_round_trip(cfg: &RoundTrip) -> Result<Vec<f64>> {
    let (to_child_r, to_child_w) = pipe()?;
    let (to_parent_r, to_parent_w) = pipe()?;
    echo_round_trip(cfg, (to_child_w, to_parent_r), (to_child_r, to_parent_w))
}

/// Round trips over a Unix stream socket pair.
pub fn socket_round_trip(cfg: &RoundTrip) -> Result<Vec<f64>> {
    let (a, b) = socket_pair()?;
    let a2 = a.try_clone().map_err(|e| Error::io("dup", e))?;
    let b2 = b.try_clone().map_err(|e| Error::io("dup", e))?;
    echo_round_trip(cfg, (a, a2), (b, b2))
}

/// One-way throughput over a pipe.
pub fn pipe_throughput(cfg: &Stream) -> Result<Throughput> {
    let (r, w) = pipe()?;
    one_way(cfg, r, w)
}

/// One-way throughput over a Unix stream socket pair.
pub fn socket_throughput(cfg: &Stream) -> Result<Throughput> {
    let (a, b) = socket_pair()?;
    one_way(cfg, a, b)
}

fn pipe() -> Result<(File, File)> {
    let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::os("pipe2", e))?;
    Ok((File::from(r), File::from(w)))
}

fn socket_pair() -> Result<(UnixStream, UnixStream)> {
    let (a, b) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
    for s in [&a, &b] {
        s.set_read_timeout(Some(DEADLINE))
            .map_err(|e| Error::io("setsockopt", e))?;
        s.set_write_timeout(Some(DEADLINE))
            .map_err(|e| Error::io("setsockopt", e))?;
    }
    Ok((a, b))
}

/// Reads exactly `buf.len()` bytes; `false` on end-of-file before the first.
fn read_message(r: &mut impl Read, buf: &mut [u8]) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(Error::io(
                    "read",
                    io::Error::new(io::ErrorKind::UnexpectedEof, "message cut short"),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", e)),
        }
    }
    Ok(true)
}

/// Ping-pong over byte streams: `parent` is (to child, from child), `child`
/// is (from parent, to parent). The child echoes until end-of-file.
fn echo_round_trip<PW, PR, CR, CW>(
    cfg: &RoundTrip,
    parent: (PW, PR),
    child: (CR, CW),
) -> Result<Vec<f64>>
where
    PW: Write,
    PR: Read,
    CR: Read,
    CW: Write,
{
    let gate = Gate::new()?;
    let size = cfg.size;
    let mut parent_side = Some(parent);
    let peer = fork_child(|| -> Result<()> {
        // Close the parent's ends here, so the parent's death shows as EOF.
        drop(parent_side.take());
        let (mut r, mut w) = child;
        pin_child()?;
        let mut buf = vec![0u8; size];
        gate.child_wait_go()?;
        while read_message(&mut r, &mut buf)? {
            w.write_all(&buf).map_err(|e| Error::io("write", e))?;
        }
        Ok(())
    })?;
    let (mut w, mut r) = parent_side
        .take()
        .ok_or(Error::Unsupported("parent ends already taken"))?;
    let gen = cfg.payload();
    let mut msg = vec![0u8; size];
    let mut echo = vec![0u8; size];
    gate.start(&peer)?;
    let samples = time_batches(cfg.warmup, cfg.samples, cfg.batch, |seq| {
        prepare(&mut msg, seq, gen);
        w.write_all(&msg).map_err(|e| Error::io("write", e))?;
        if !read_message(&mut r, &mut echo)? {
            return Err(Error::PeerClosed {
                waiting_for: "an echo",
                detail: "closed its end".into(),
            });
        }
        check(&echo, seq, size, gen)
    })?;
    drop((w, r));
    finish(peer)?;
    Ok(samples)
}

/// One-way throughput over a byte stream: the child writes each stamped
/// message with one `write`; the parent reads 256 KiB chunks and counts
/// bytes.
fn one_way<PR, CW>(cfg: &Stream, parent: PR, child: CW) -> Result<Throughput>
where
    PR: Read,
    CW: Write,
{
    let gate = Gate::new()?;
    let (size, count) = (cfg.size, cfg.count);
    let mut parent_side = Some(parent);
    let peer = fork_child(|| -> Result<()> {
        drop(parent_side.take());
        let mut w = child;
        pin_child()?;
        let mut msg = vec![0u8; size];
        gate.child_wait_go()?;
        for seq in 0..count {
            stamp(&mut msg, seq);
            w.write_all(&msg).map_err(|e| Error::io("write", e))?;
        }
        Ok(())
    })?;
    let mut r = parent_side
        .take()
        .ok_or(Error::Unsupported("parent end already taken"))?;
    let mut buf = vec![0u8; READ_CHUNK];
    let want = count * size as u64;
    let mut got = 0u64;
    let start = gate.start(&peer)?;
    while got < want {
        match r.read(&mut buf) {
            Ok(0) => {
                return Err(Error::PeerClosed {
                    waiting_for: "the rest of the stream",
                    detail: format!("closed its end after {got} of {want} bytes"),
                })
            }
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", e)),
        }
    }
    let elapsed = start.elapsed();
    drop(r);
    finish(peer)?;
    Ok(Throughput {
        messages: count,
        bytes: got,
        elapsed,
    })
}
