//! The messages of a measurement: a *stamp* (the sequence number plus one,
//! little-endian, in the first bytes) that the receiver checks, so loss and
//! reordering fail a run; or, when verifying, a whole [`PayloadGen`] message
//! checked byte for byte.

use ipc_tests::payload::PayloadGen;

use crate::{Error, Result};

/// Writes message `seq`'s stamp (`seq + 1`, little-endian) into the first
/// bytes of `msg` (as many as fit, up to 8).
#[inline(always)]
pub fn stamp(msg: &mut [u8], seq: u64) {
    let word = (seq + 1).to_le_bytes();
    match msg.first_chunk_mut::<8>() {
        // A fixed-size copy compiles to one store, not a `memcpy` call.
        Some(head) => *head = word,
        None => {
            let n = msg.len();
            msg.copy_from_slice(&word[..n]);
        }
    }
}

/// The stamp `msg` carries (its first bytes, up to 8).
#[inline(always)]
fn stamp_of(msg: &[u8]) -> u64 {
    match msg.first_chunk::<8>() {
        Some(head) => u64::from_le_bytes(*head),
        None => {
            let mut word = [0u8; 8];
            word[..msg.len()].copy_from_slice(msg);
            u64::from_le_bytes(word)
        }
    }
}

/// The stamp of message `seq` in a message of `len` bytes.
#[inline(always)]
fn expected_stamp(seq: u64, len: usize) -> u64 {
    if len >= 8 {
        seq + 1
    } else {
        (seq + 1) & ((1u64 << (8 * len)) - 1)
    }
}

/// Prepares message `seq` in `msg`: a stamp, or the whole payload.
#[inline(always)]
pub fn prepare(msg: &mut [u8], seq: u64, gen: Option<PayloadGen>) {
    match gen {
        None => stamp(msg, seq),
        Some(gen) => gen.fill(seq, msg),
    }
}

/// Checks that `msg` is message `seq` of `size` bytes.
#[inline(always)]
pub fn check(msg: &[u8], seq: u64, size: usize, gen: Option<PayloadGen>) -> Result<()> {
    if msg.len() != size {
        return Err(mismatch("length", seq, size as u64, msg.len() as u64));
    }
    match gen {
        Some(gen) => verify(gen, seq, msg),
        None => {
            let (expected, found) = (expected_stamp(seq, msg.len()), stamp_of(msg));
            if found == expected {
                Ok(())
            } else {
                Err(mismatch("stamp", seq, expected, found))
            }
        }
    }
}

/// Checks that `msg` is message `seq` of `gen`, every byte of it.
#[inline(always)]
pub fn verify(gen: PayloadGen, seq: u64, msg: &[u8]) -> Result<()> {
    gen.verify(seq, msg)
        .map_err(|error| Error::Payload { seq, error })
}

#[cold]
fn mismatch(what: &'static str, seq: u64, expected: u64, found: u64) -> Error {
    Error::Mismatch {
        what,
        seq,
        expected,
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_catch_reordering() {
        let mut msg = [0u8; 16];
        stamp(&mut msg, 41);
        assert!(check(&msg, 41, 16, None).is_ok());
        assert!(check(&msg, 42, 16, None).is_err());
        assert!(check(&msg[..8], 41, 16, None).is_err());
        // An all-zero message is never a valid stamp.
        assert!(check(&[0u8; 8], 0, 8, None).is_err());
    }
}
