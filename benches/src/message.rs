//! The messages of a measurement: a *stamp* (the sequence number plus one,
//! little-endian, in the first bytes) that the receiver checks, so loss and
//! reordering fail a run; or, when verifying, a whole [`PayloadGen`] message
//! checked byte for byte.
//!
//! With several producers and consumers ([`FanIn`]) the stamp also names
//! the producer; each consumer checks that every producer's messages reach
//! it in order, and the consumers' tallies together must hold every
//! message exactly once ([`check_fan_in`]).

use ipc_tests::payload::PayloadGen;

use crate::{Error, Result};

/// Most producers of a fan-in.
pub const MAX_PRODUCERS: usize = 4;

/// Bits of a fan-in stamp that hold the sequence number plus one; the
/// producer's index is above them.
const SEQ_BITS: u32 = 48;

/// Seed of the payloads of verified fan-ins (producer `p` uses `SEED ^ p`).
const FAN_IN_SEED: u64 = 0xfa41_2024_0bad_cafe;

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

/// Prepares message `seq` of producer `producer` in `msg` (at least 8
/// bytes): the stamp `producer << 48 | seq + 1` in the first 8 bytes, and
/// with `verify` the rest from the producer's payload stream.
#[inline(always)]
pub fn prepare_from(msg: &mut [u8], producer: usize, seq: u64, verify: bool) {
    let word = (producer as u64) << SEQ_BITS | (seq + 1);
    let (head, body) = msg.split_at_mut(8);
    head.copy_from_slice(&word.to_le_bytes());
    if verify {
        PayloadGen::fixed(FAN_IN_SEED ^ producer as u64, body.len()).fill(seq, body);
    }
}

/// What one consumer of a fan-in received from each producer: how many
/// messages, and the sum and the sum of squares of their sequence numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages per producer.
    pub count: [u64; MAX_PRODUCERS],
    /// Sum of the sequence numbers, per producer (wrapping).
    pub sum: [u64; MAX_PRODUCERS],
    /// Sum of their squares, per producer (wrapping).
    pub squares: [u64; MAX_PRODUCERS],
}

impl Tally {
    /// Words in [`Tally::to_words`].
    pub const WORDS: usize = 3 * MAX_PRODUCERS;

    /// The tally as words, to hand to another process.
    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let mut words = [0; Self::WORDS];
        for p in 0..MAX_PRODUCERS {
            words[p] = self.count[p];
            words[MAX_PRODUCERS + p] = self.sum[p];
            words[2 * MAX_PRODUCERS + p] = self.squares[p];
        }
        words
    }

    /// A tally from [`Tally::to_words`].
    pub fn from_words(words: &[u64; Self::WORDS]) -> Tally {
        let mut t = Tally::default();
        for p in 0..MAX_PRODUCERS {
            t.count[p] = words[p];
            t.sum[p] = words[MAX_PRODUCERS + p];
            t.squares[p] = words[2 * MAX_PRODUCERS + p];
        }
        t
    }

    /// Adds `other`'s messages to these.
    pub fn add(&mut self, other: &Tally) {
        for p in 0..MAX_PRODUCERS {
            self.count[p] += other.count[p];
            self.sum[p] = self.sum[p].wrapping_add(other.sum[p]);
            self.squares[p] = self.squares[p].wrapping_add(other.squares[p]);
        }
    }
}

/// One consumer's side of a fan-in: checks each message it receives (its
/// length, a known producer, that producer's order, and with `verify` every
/// byte) and tallies it.
#[derive(Clone, Copy, Debug)]
pub struct FanIn {
    /// What arrived so far.
    pub tally: Tally,
    /// Per producer, the last sequence number plus one (0: none yet).
    last: [u64; MAX_PRODUCERS],
    producers: usize,
    size: usize,
    verify: bool,
}

impl FanIn {
    /// A consumer of `size`-byte messages from `producers` producers.
    pub fn new(producers: usize, size: usize, verify: bool) -> FanIn {
        FanIn {
            tally: Tally::default(),
            last: [0; MAX_PRODUCERS],
            producers,
            size,
            verify,
        }
    }

    /// Checks and counts one message.
    #[inline(always)]
    pub fn take(&mut self, msg: &[u8]) -> Result<()> {
        let Some(head) = msg.first_chunk::<8>().filter(|_| msg.len() == self.size) else {
            return Err(mismatch(
                "length",
                self.received(),
                self.size as u64,
                msg.len() as u64,
            ));
        };
        let word = u64::from_le_bytes(*head);
        let (producer, seq1) = ((word >> SEQ_BITS) as usize, word & ((1 << SEQ_BITS) - 1));
        if producer >= self.producers || seq1 == 0 {
            return Err(mismatch("stamp", self.received(), 0, word));
        }
        if seq1 <= self.last[producer] {
            return Err(mismatch(
                "order of a producer's messages",
                seq1 - 1,
                self.last[producer] + 1,
                seq1,
            ));
        }
        let seq = seq1 - 1;
        if self.verify {
            PayloadGen::fixed(FAN_IN_SEED ^ producer as u64, msg.len() - 8)
                .verify(seq, &msg[8..])
                .map_err(|error| Error::Payload { seq, error })?;
        }
        self.last[producer] = seq1;
        self.tally.count[producer] += 1;
        self.tally.sum[producer] = self.tally.sum[producer].wrapping_add(seq);
        self.tally.squares[producer] =
            self.tally.squares[producer].wrapping_add(seq.wrapping_mul(seq));
        Ok(())
    }

    /// Messages taken so far (for errors: which message was wrong).
    #[cold]
    fn received(&self) -> u64 {
        self.tally.count.iter().sum()
    }
}

/// Checks that `total`, every consumer's tally added up, holds messages
/// `0..per_producer` of each of `producers` producers exactly once: the
/// counts, the sums and the sums of squares match (with each consumer's
/// order check, a lost or duplicated message cannot hide).
pub fn check_fan_in(total: &Tally, producers: usize, per_producer: u64) -> Result<()> {
    let n = u128::from(per_producer);
    let sum = (n * n.saturating_sub(1) / 2) as u64;
    let squares = (n.saturating_sub(1) * n * (2 * n).saturating_sub(1) / 6) as u64;
    for p in 0..MAX_PRODUCERS {
        let want = if p < producers {
            (per_producer, sum, squares)
        } else {
            (0, 0, 0)
        };
        let got = (total.count[p], total.sum[p], total.squares[p]);
        if got.0 != want.0 {
            return Err(mismatch("messages received", p as u64, want.0, got.0));
        }
        if got != want {
            return Err(mismatch(
                "sum of sequence numbers (or of their squares)",
                p as u64,
                want.1,
                got.1,
            ));
        }
    }
    Ok(())
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

    #[test]
    fn fan_in_catches_reordering_duplicates_and_loss() {
        let mut msg = [0u8; 24];
        let (mut a, mut b) = (FanIn::new(2, 24, true), FanIn::new(2, 24, true));
        for seq in 0..10 {
            prepare_from(&mut msg, 1, seq, true);
            let consumer = if seq % 3 == 0 { &mut a } else { &mut b };
            consumer.take(&msg).unwrap();
            prepare_from(&mut msg, 0, seq, true);
            a.take(&msg).unwrap();
        }
        // Order: message 9 of producer 0 again.
        assert!(a.clone().take(&msg).is_err());
        // Unknown producer, wrong length, corrupted payload.
        prepare_from(&mut msg, 2, 10, true);
        assert!(a.take(&msg).is_err());
        assert!(a.take(&msg[..16]).is_err());
        prepare_from(&mut msg, 0, 10, true);
        msg[20] ^= 1;
        assert!(a.take(&msg).is_err());

        let mut total = a.tally;
        total.add(&b.tally);
        assert!(check_fan_in(&total, 2, 10).is_ok());
        assert!(check_fan_in(&total, 2, 11).is_err());
        // A duplicate and a loss with the same count and sum.
        let mut forged = total;
        forged.squares[1] += 2;
        assert!(check_fan_in(&forged, 2, 10).is_err());
        assert_eq!(Tally::from_words(&total.to_words()), total);
    }
}
