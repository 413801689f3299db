//! Self-checking messages: a deterministic stream that a consumer can verify
//! byte for byte, so loss, duplication, reordering and corruption all show.
//!
//! Message `seq` of a stream has a length and contents derived from
//! `(seed, seq)`. When it is long enough it also carries `seq` (bytes 0..8,
//! little-endian) and a checksum of its remaining bytes (bytes 8..16), so a
//! message read on its own identifies itself. Nothing here allocates, so it
//! is safe in a child after `fork`.
//!
//! ```
//! use ipc_tests::payload::PayloadGen;
//!
//! let gen = PayloadGen::random(7, 100);
//! let mut buf = [0u8; 100];
//! let msg = &mut buf[..gen.len_of(3)];
//! gen.fill(3, msg);
//! assert!(gen.verify(3, msg).is_ok());
//! assert!(gen.verify(4, msg).is_err());
//! ```

use std::fmt;

/// A deterministic stream of messages.
#[derive(Clone, Copy, Debug)]
pub struct PayloadGen {
    seed: u64,
    max_len: usize,
    fixed: bool,
}

/// How a message differs from what the stream says it should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Its length is not message `seq`'s length.
    Length {
        /// Expected length.
        expected: usize,
        /// Received length.
        found: usize,
    },
    /// It carries another sequence number (lost, duplicated or reordered).
    Sequence {
        /// Expected sequence number.
        expected: u64,
        /// Sequence number carried.
        found: u64,
    },
    /// Its checksum does not match its bytes.
    Checksum,
    /// A byte differs from the stream's.
    Byte {
        /// Index of the first differing byte.
        index: usize,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::Length { expected, found } => {
                write!(f, "length {found}, expected {expected}")
            }
            PayloadError::Sequence { expected, found } => {
                write!(f, "sequence number {found}, expected {expected}")
            }
            PayloadError::Checksum => write!(f, "checksum mismatch"),
            PayloadError::Byte { index } => write!(f, "byte {index} differs"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// SplitMix64: a fast, well-mixed hash of a 64-bit value.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A checksum of `bytes`: SplitMix64 folded over 8-byte words (the last one
/// zero-padded) and the length.
#[inline]
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut h = mix(bytes.len() as u64);
    for chunk in &mut chunks {
        h = mix(h ^ u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix(h ^ u64::from_le_bytes(last))
}

impl PayloadGen {
    /// Messages of pseudo-random length in `0..=max_len`.
    pub fn random(seed: u64, max_len: usize) -> Self {
        PayloadGen {
            seed,
            max_len,
            fixed: false,
        }
    }

    /// Messages of exactly `len` bytes.
    pub fn fixed(seed: u64, len: usize) -> Self {
        PayloadGen {
            seed,
            max_len: len,
            fixed: true,
        }
    }

    /// The longest message of the stream.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Length of message `seq`.
    #[inline]
    pub fn len_of(&self, seq: u64) -> usize {
        if self.fixed {
            self.max_len
        } else {
            (mix(self.seed ^ seq.rotate_left(17)) % (self.max_len as u64 + 1)) as usize
        }
    }

    /// Word `index / 8` of message `seq`'s pseudo-random body.
    #[inline]
    fn body_word(&self, seq: u64, word: usize) -> [u8; 8] {
        mix(self.seed.wrapping_add(seq << 20) ^ word as u64).to_le_bytes()
    }

    /// Calls `f(start, expected bytes)` for each chunk of the body from byte
    /// `from` on, one hash per 8 bytes.
    #[inline]
    fn body_chunks(&self, seq: u64, from: usize, len: usize, mut f: impl FnMut(usize, &[u8])) {
        let mut at = from;
        while at < len {
            let word = self.body_word(seq, at / 8);
            let end = (at / 8 * 8 + 8).min(len);
            f(at, &word[at % 8..at % 8 + (end - at)]);
            at = end;
        }
    }

    /// Writes message `seq` into `msg`, whose length must be `len_of(seq)`.
    #[inline]
    pub fn fill(&self, seq: u64, msg: &mut [u8]) {
        debug_assert_eq!(msg.len(), self.len_of(seq));
        let start = if msg.len() >= 16 { 16 } else { 0 };
        self.body_chunks(seq, start, msg.len(), |at, bytes| {
            msg[at..at + bytes.len()].copy_from_slice(bytes)
        });
        if msg.len() >= 16 {
            msg[..8].copy_from_slice(&seq.to_le_bytes());
            let sum = checksum(&msg[16..]);
            msg[8..16].copy_from_slice(&sum.to_le_bytes());
        }
    }

    /// Checks that `msg` is message `seq`, every byte of it.
    #[inline]
    pub fn verify(&self, seq: u64, msg: &[u8]) -> Result<(), PayloadError> {
        let expected = self.len_of(seq);
        if msg.len() != expected {
            return Err(PayloadError::Length {
                expected,
                found: msg.len(),
            });
        }
        let start = if msg.len() >= 16 {
            let found = u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"));
            if found != seq {
                return Err(PayloadError::Sequence {
                    expected: seq,
                    found,
                });
            }
            let sum = u64::from_le_bytes(msg[8..16].try_into().expect("8 bytes"));
            if sum != checksum(&msg[16..]) {
                return Err(PayloadError::Checksum);
            }
            16
        } else {
            0
        };
        let mut first_bad = None;
        self.body_chunks(seq, start, msg.len(), |at, bytes| {
            if first_bad.is_none() && msg[at..at + bytes.len()] != *bytes {
                let offset = bytes.iter().zip(&msg[at..]).position(|(a, b)| a != b);
                first_bad = Some(at + offset.unwrap_or(0));
            }
        });
        match first_bad {
            Some(index) => Err(PayloadError::Byte { index }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_round_trips_and_detects_a_flipped_byte() {
        let gen = PayloadGen::random(1, 64);
        let mut buf = [0u8; 64];
        for seq in 0..500 {
            let msg = &mut buf[..gen.len_of(seq)];
            gen.fill(seq, msg);
            assert_eq!(gen.verify(seq, msg), Ok(()));
            if !msg.is_empty() {
                let i = (seq as usize) % msg.len();
                msg[i] ^= 0x40;
                assert!(gen.verify(seq, msg).is_err(), "seq {seq} byte {i}");
            }
        }
    }

    #[test]
    fn lengths_cover_the_range() {
        let gen = PayloadGen::random(9, 10);
        let mut seen = [false; 11];
        for seq in 0..1000 {
            seen[gen.len_of(seq)] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(PayloadGen::fixed(0, 8).len_of(12345), 8);
    }

    #[test]
    fn another_sequence_number_is_reported() {
        let gen = PayloadGen::fixed(3, 32);
        let mut msg = [0u8; 32];
        gen.fill(5, &mut msg);
        assert_eq!(
            gen.verify(6, &msg),
            Err(PayloadError::Sequence {
                expected: 6,
                found: 5
            })
        );
    }
}
