//! Byte streams between the two processes: a pipe (one per direction for
//! round trips) and a Unix stream socket pair, with one `write` per message.
//! Reads and writes block: these are sleeping wake-ups.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use std::time::Instant;

use ipc_tests::fork::ForkedChild;
use ipc_tests::payload::PayloadGen;

use crate::message::{check, prepare, stamp};
use crate::paired::{Echo, Leg, Ping};
use crate::process::{finish, fork_child, pin_child};
use crate::stats::{Laps, Throughput};
use crate::wait::Gate;
use crate::workload::{RoundTrip, Stream};
use crate::{Error, Result, DEADLINE};

/// Size of the buffer the one-way streams read into.
const READ_CHUNK: usize = 256 * 1024;

/// Round trips over two pipes, as a [`Leg`].
pub fn pipe_leg(cfg: &RoundTrip) -> Result<Box<dyn Leg>> {
    let (to_child_r, to_child_w) = pipe()?;
    let (to_parent_r, to_parent_w) = pipe()?;
    Ok(Box::new(StreamLeg {
        parent: (to_child_w, to_parent_r),
        child: (to_child_r, to_parent_w),
        size: cfg.size,
        gen: cfg.payload(),
    }))
}

/// Round trips over a Unix stream socket pair, as a [`Leg`].
pub fn socket_leg(cfg: &RoundTrip) -> Result<Box<dyn Leg>> {
    let (a, b) = socket_pair()?;
    let a2 = a.try_clone().map_err(|e| Error::io("dup", e))?;
    let b2 = b.try_clone().map_err(|e| Error::io("dup", e))?;
    Ok(Box::new(StreamLeg {
        parent: (a, a2),
        child: (b, b2),
        size: cfg.size,
        gen: cfg.payload(),
    }))
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

/// Ping-pong over byte streams: `parent` is (to child, from child),
/// `child` is (from parent, to parent). Each side keeps its own ends only,
/// so the other's death shows as end-of-file.
struct StreamLeg<PW, PR, CR, CW> {
    parent: (PW, PR),
    child: (CR, CW),
    size: usize,
    gen: Option<PayloadGen>,
}

impl<PW, PR, CR, CW> Leg for StreamLeg<PW, PR, CR, CW>
where
    PW: Write + 'static,
    PR: Read + 'static,
    CR: Read + 'static,
    CW: Write + 'static,
{
    fn into_echo(self: Box<Self>) -> Result<Box<dyn Echo>> {
        let (r, w) = self.child;
        Ok(Box::new(StreamSide {
            w,
            r,
            msg: vec![0u8; self.size],
            buf: vec![0u8; self.size],
            gen: self.gen,
        }))
    }

    fn into_ping(self: Box<Self>) -> Result<Box<dyn Ping>> {
        let (w, r) = self.parent;
        Ok(Box::new(StreamSide {
            w,
            r,
            msg: vec![0u8; self.size],
            buf: vec![0u8; self.size],
            gen: self.gen,
        }))
    }
}

/// One side of a byte-stream round trip.
struct StreamSide<W, R> {
    w: W,
    r: R,
    msg: Vec<u8>,
    buf: Vec<u8>,
    gen: Option<PayloadGen>,
}

impl<W: Write, R: Read> StreamSide<W, R> {
    fn read(&mut self, waiting_for: &'static str) -> Result<()> {
        if read_message(&mut self.r, &mut self.buf)? {
            Ok(())
        } else {
            Err(Error::PeerClosed {
                waiting_for,
                detail: "closed its end".into(),
            })
        }
    }
}

impl<W: Write, R: Read> Echo for StreamSide<W, R> {
    fn echo(&mut self, n: u64, _: Instant) -> Result<()> {
        for _ in 0..n {
            self.read("a ping")?;
            self.w
                .write_all(&self.buf)
                .map_err(|e| Error::io("write", e))?;
        }
        Ok(())
    }
}

impl<W: Write, R: Read> Ping for StreamSide<W, R> {
    fn ping(
        &mut self,
        first: u64,
        n: u64,
        _: Instant,
        _: &ForkedChild,
        laps: &mut Laps,
    ) -> Result<()> {
        for seq in first..first + n {
            prepare(&mut self.msg, seq, self.gen);
            self.w
                .write_all(&self.msg)
                .map_err(|e| Error::io("write", e))?;
            self.read("an echo")?;
            check(&self.buf, seq, self.msg.len(), self.gen)?;
            laps.lap();
        }
        Ok(())
    }
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
        wait_syscalls: None,
    })
}
