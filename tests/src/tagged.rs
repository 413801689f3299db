//! Tagged messages for tests with many producers, and tallies that prove
//! exactly-once delivery without shipping every message back to the test.
//!
//! A tagged message is [`TAGGED_LEN`] bytes: its producer's id (bytes 0..8,
//! little-endian), its sequence number in that producer's stream (8..16),
//! five words derived from both (16..56) and a checksum of all that
//! (56..64). A consumer checks each message on its own: a message half
//! written, torn, or written by nobody fails [`read`].
//!
//! A consumer keeps a [`Tally`]: per producer, how many messages it got,
//! the first and last sequence numbers, their sum, a wrapping sum of a hash
//! of each, and how many came out of order. Tallies merge by adding, and
//! [`Stream::of`] says what the merged tally of a stream delivered exactly
//! once must be: equal counts and hash sums leave no room for a message
//! delivered twice in place of one lost (short of a 64-bit collision), and
//! each consumer's own order check catches duplicates within it. A tally
//! is a fixed array (no allocation, so a forked child can keep one) that
//! travels as a text line or as raw words through a pipe.
//!
//! ```
//! use ipc_tests::tagged::{self, Stream, Tally, TAGGED_LEN};
//!
//! let mut tally = Tally::default();
//! let mut msg = [0u8; TAGGED_LEN];
//! for seq in 0..10 {
//!     tagged::fill(3, seq, &mut msg);
//!     tally.record(&msg).unwrap();
//! }
//! assert_eq!(*tally.stream(3), Stream::of(3, 0..10));
//! assert_eq!(Tally::parse(&tally.to_line()).unwrap(), tally);
//! msg[20] ^= 1;
//! assert!(tagged::read(&msg).is_err());
//! ```

use std::fmt;

use crate::payload::{checksum, mix};

/// Bytes of every tagged message.
pub const TAGGED_LEN: usize = 64;
/// Producer ids are below this.
pub const MAX_PRODUCERS: usize = 16;

const BODY: core::ops::Range<usize> = 16..56;
const SUM_AT: usize = 56;

/// Who sent a message, and its place in the sender's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The producer's id, below [`MAX_PRODUCERS`].
    pub producer: usize,
    /// Its sequence number in that producer's stream.
    pub seq: u64,
}

/// Why a message is not a tagged message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagError {
    /// It is not [`TAGGED_LEN`] bytes long.
    Length(usize),
    /// Its producer id is [`MAX_PRODUCERS`] or more.
    Producer(u64),
    /// Its checksum or body does not match its tag: torn, half written, or
    /// forged.
    Corrupt {
        /// The producer id it carries.
        producer: u64,
        /// The sequence number it carries.
        seq: u64,
    },
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagError::Length(len) => write!(f, "{len} bytes, expected {TAGGED_LEN}"),
            TagError::Producer(id) => write!(f, "producer id {id} out of range"),
            TagError::Corrupt { producer, seq } => {
                write!(f, "corrupt message tagged producer {producer} seq {seq}")
            }
        }
    }
}

impl std::error::Error for TagError {}

/// Word `i` of the body of `producer`'s message `seq`.
fn body_word(producer: u64, seq: u64, i: usize) -> u64 {
    mix(producer << 56 ^ seq ^ (i as u64) << 48)
}

/// Writes `producer`'s message `seq` into `msg` ([`TAGGED_LEN`] bytes).
pub fn fill(producer: usize, seq: u64, msg: &mut [u8]) {
    fill_half(producer, seq, msg);
    for (i, at) in BODY.step_by(8).enumerate().skip(2) {
        msg[at..at + 8].copy_from_slice(&body_word(producer as u64, seq, i).to_le_bytes());
    }
    let sum = checksum(&msg[..SUM_AT]);
    msg[SUM_AT..].copy_from_slice(&sum.to_le_bytes());
}

/// Writes only the first half of `producer`'s message `seq` (tag and two
/// body words): what a producer killed halfway through leaves behind.
pub fn fill_half(producer: usize, seq: u64, msg: &mut [u8]) {
    assert_eq!(msg.len(), TAGGED_LEN);
    msg[..8].copy_from_slice(&(producer as u64).to_le_bytes());
    msg[8..16].copy_from_slice(&seq.to_le_bytes());
    for (i, at) in BODY.step_by(8).enumerate().take(2) {
        msg[at..at + 8].copy_from_slice(&body_word(producer as u64, seq, i).to_le_bytes());
    }
}

/// Checks `msg` on its own: its tag, if every byte is what its producer
/// writes.
pub fn read(msg: &[u8]) -> Result<Tag, TagError> {
    if msg.len() != TAGGED_LEN {
        return Err(TagError::Length(msg.len()));
    }
    let word = |at: usize| u64::from_le_bytes(msg[at..at + 8].try_into().expect("8 bytes"));
    let (producer, seq) = (word(0), word(8));
    if producer >= MAX_PRODUCERS as u64 {
        return Err(TagError::Producer(producer));
    }
    let body_ok = BODY
        .step_by(8)
        .enumerate()
        .all(|(i, at)| word(at) == body_word(producer, seq, i));
    if !body_ok || word(SUM_AT) != checksum(&msg[..SUM_AT]) {
        return Err(TagError::Corrupt { producer, seq });
    }
    Ok(Tag {
        producer: producer as usize,
        seq,
    })
}

/// What one or more consumers received of one producer's stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// Messages received.
    pub count: u64,
    /// Smallest sequence number received (0 when none).
    pub first: u64,
    /// Largest sequence number received (0 when none).
    pub last: u64,
    /// Sum of the sequence numbers received.
    pub seq_sum: u64,
    /// Wrapping sum of a 64-bit hash of each sequence number received.
    pub hash_sum: u64,
    /// Messages whose sequence number was not above the one its consumer
    /// had received before from the same producer.
    pub disordered: u64,
}

impl Stream {
    const WORDS: usize = 6;

    fn hash(seq: u64) -> u64 {
        mix(seq ^ 0x5555_aaaa_0000_0000)
    }

    /// The tally of `producer`'s messages `seqs` (increasing), each
    /// delivered once, in order.
    pub fn of(producer: usize, seqs: impl IntoIterator<Item = u64>) -> Stream {
        let mut tally = Tally::default();
        for seq in seqs {
            tally.count(Tag { producer, seq });
        }
        tally.streams[producer]
    }

    fn add(&mut self, seq: u64) {
        if self.count > 0 && seq <= self.last {
            self.disordered += 1;
        }
        self.first = if self.count == 0 {
            seq
        } else {
            self.first.min(seq)
        };
        self.last = self.last.max(seq);
        self.count += 1;
        self.seq_sum = self.seq_sum.wrapping_add(seq);
        self.hash_sum = self.hash_sum.wrapping_add(Self::hash(seq));
    }

    fn merge(&mut self, other: &Stream) {
        if other.count == 0 {
            return;
        }
        self.first = if self.count == 0 {
            other.first
        } else {
            self.first.min(other.first)
        };
        self.last = self.last.max(other.last);
        self.count += other.count;
        self.seq_sum = self.seq_sum.wrapping_add(other.seq_sum);
        self.hash_sum = self.hash_sum.wrapping_add(other.hash_sum);
        self.disordered += other.disordered;
    }

    fn words(&self) -> [u64; Self::WORDS] {
        [
            self.count,
            self.first,
            self.last,
            self.seq_sum,
            self.hash_sum,
            self.disordered,
        ]
    }

    fn from_words(w: [u64; Self::WORDS]) -> Stream {
        Stream {
            count: w[0],
            first: w[1],
            last: w[2],
            seq_sum: w[3],
            hash_sum: w[4],
            disordered: w[5],
        }
    }
}

/// What a consumer received: a [`Stream`] per producer, and the messages
/// that were not tagged messages at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    streams: [Stream; MAX_PRODUCERS],
    /// Messages that failed [`read`].
    pub corrupt: u64,
}

/// Why a line is not a tally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a tally line: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

impl Tally {
    /// Words of [`to_words`](Self::to_words).
    pub const WORDS: usize = 1 + MAX_PRODUCERS * Stream::WORDS;

    /// Checks `msg` and counts it: under its producer if it is a tagged
    /// message, as corrupt if not.
    pub fn record(&mut self, msg: &[u8]) -> Result<Tag, TagError> {
        let tag = read(msg).inspect_err(|_| self.corrupt += 1)?;
        self.count(tag);
        Ok(tag)
    }

    /// Counts a message already checked.
    pub fn count(&mut self, tag: Tag) {
        self.streams[tag.producer].add(tag.seq);
    }

    /// What was received of `producer`'s stream.
    pub fn stream(&self, producer: usize) -> &Stream {
        &self.streams[producer]
    }

    /// Messages received, corrupt ones included.
    pub fn total(&self) -> u64 {
        self.corrupt + self.streams.iter().map(|s| s.count).sum::<u64>()
    }

    /// Adds another consumer's tally to this one.
    pub fn merge(&mut self, other: &Tally) {
        for (mine, theirs) in self.streams.iter_mut().zip(&other.streams) {
            mine.merge(theirs);
        }
        self.corrupt += other.corrupt;
    }

    /// The tally as words, to write through a pipe (no allocation).
    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let mut words = [0; Self::WORDS];
        words[0] = self.corrupt;
        for (chunk, stream) in words[1..]
            .chunks_exact_mut(Stream::WORDS)
            .zip(&self.streams)
        {
            chunk.copy_from_slice(&stream.words());
        }
        words
    }

    /// The tally [`to_words`](Self::to_words) made.
    pub fn from_words(words: &[u64; Self::WORDS]) -> Tally {
        let mut tally = Tally {
            corrupt: words[0],
            ..Tally::default()
        };
        for (stream, chunk) in tally.streams.iter_mut().zip(words[1..].chunks_exact(6)) {
            *stream = Stream::from_words(chunk.try_into().expect("6 words"));
        }
        tally
    }

    /// One line: `tally CORRUPT` then `ID:COUNT,FIRST,LAST,SEQ_SUM,HASH_SUM,DISORDERED`
    /// for each producer heard from.
    pub fn to_line(&self) -> String {
        let mut line = format!("tally {}", self.corrupt);
        for (id, stream) in self.streams.iter().enumerate() {
            if stream.count > 0 {
                let w = stream.words().map(|x| x.to_string());
                line.push_str(&format!(" {id}:{}", w.join(",")));
            }
        }
        line
    }

    /// Reads a line [`to_line`](Self::to_line) made.
    pub fn parse(line: &str) -> Result<Tally, ParseError> {
        let bad = || ParseError(line.to_string());
        let mut fields = line.split_whitespace();
        if fields.next() != Some("tally") {
            return Err(bad());
        }
        let mut tally = Tally {
            corrupt: fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?,
            ..Tally::default()
        };
        for field in fields {
            let (id, words) = field.split_once(':').ok_or_else(bad)?;
            let id: usize = id.parse().map_err(|_| bad())?;
            let words: Vec<u64> = words
                .split(',')
                .map(|w| w.parse().map_err(|_| bad()))
                .collect::<Result<_, _>>()?;
            let words: [u64; Stream::WORDS] = words.try_into().map_err(|_| bad())?;
            *tally.streams.get_mut(id).ok_or_else(bad)? = Stream::from_words(words);
        }
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_of_a_message_is_checked() {
        let mut msg = [0u8; TAGGED_LEN];
        fill(5, 1234, &mut msg);
        assert_eq!(
            read(&msg),
            Ok(Tag {
                producer: 5,
                seq: 1234
            })
        );
        for i in 0..TAGGED_LEN {
            let mut bad = msg;
            bad[i] ^= 0x10;
            assert!(read(&bad).is_err(), "byte {i}");
        }
        assert_eq!(read(&msg[1..]), Err(TagError::Length(TAGGED_LEN - 1)));
        let mut half = [0u8; TAGGED_LEN];
        fill_half(5, 1234, &mut half);
        assert_eq!(
            read(&half),
            Err(TagError::Corrupt {
                producer: 5,
                seq: 1234
            })
        );
        // Another message's second half does not complete this one.
        let mut torn = msg;
        fill_half(5, 1235, &mut torn);
        assert!(read(&torn).is_err());
    }

    #[test]
    fn merged_tallies_show_a_duplicate_a_loss_and_disorder() {
        let mut msg = [0u8; TAGGED_LEN];
        let tally_of = |seqs: &[u64]| {
            let mut tally = Tally::default();
            let mut msg = [0u8; TAGGED_LEN];
            for &seq in seqs {
                fill(1, seq, &mut msg);
                tally.record(&msg).unwrap();
            }
            tally
        };
        let mut merged = tally_of(&[0, 2, 3]);
        merged.merge(&tally_of(&[1, 4]));
        assert_eq!(*merged.stream(1), Stream::of(1, 0..5));
        // 2 three times instead of 1 and 3 (by three consumers): the same
        // count and sum of sequence numbers, but not the same hashes.
        let mut twice = tally_of(&[0, 2]);
        twice.merge(&tally_of(&[2]));
        twice.merge(&tally_of(&[2]));
        let once = Stream::of(1, 0..4);
        assert_eq!(
            (twice.stream(1).count, twice.stream(1).seq_sum),
            (once.count, once.seq_sum)
        );
        assert_ne!(*twice.stream(1), once);
        assert_eq!(tally_of(&[3, 2]).stream(1).disordered, 1);
        // Corrupt messages are counted apart; round trips keep everything.
        let mut tally = tally_of(&[7, 9]);
        fill_half(2, 0, &mut msg);
        assert!(tally.record(&msg).is_err());
        assert_eq!((tally.corrupt, tally.total()), (1, 3));
        assert_eq!(Tally::parse(&tally.to_line()), Ok(tally));
        assert_eq!(Tally::from_words(&tally.to_words()), tally);
        assert!(Tally::parse("tally x").is_err());
        assert!(Tally::parse("tally 0 99:1,1,1,1,1,0").is_err());
    }
}
