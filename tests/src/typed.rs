//! Messages for the typed-channel tests.
//!
//! A typed channel checks at open that both sides name the same type, and
//! the name is `std::any::type_name`, which includes the defining crate: so
//! the test and its peer program must use types defined once, here.
//!
//! Every message is derived from `(producer, seq)`, so a receiver checks a
//! message on its own by rebuilding it: [`Record::new`] for serde records,
//! [`Sample::new`] for plain-old-data samples.
//!
//! ```
//! use ipc_tests::typed::{Record, Sample};
//!
//! let record = Record::new(1, 42);
//! assert!(record.is_intact());
//! assert_eq!(record, Record::new(record.producer, record.seq));
//!
//! let mut sample = Sample::new(9, 7);
//! sample.fill(2, 5); // in place, as into a reserved slot
//! assert_eq!(sample, Sample::new(2, 5));
//! ```

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use crate::payload::mix;

/// A serde message with what bincode encodes in different ways: integers
/// of every size, a string, a vector and an enum whose variants carry data
/// of several shapes. 20 to about 150 bytes encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Which producer sent it.
    pub producer: u32,
    /// Its place in that producer's stream, from 0.
    pub seq: u64,
    /// Text naming it.
    pub label: String,
    /// 0 to 8 values, small and large.
    pub values: Vec<u64>,
    /// One of four variants, by `seq`.
    pub kind: Kind,
}

/// What a [`Record`] is about: each shape of enum variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    /// A unit variant.
    Heartbeat,
    /// A struct variant.
    Reading {
        /// Which sensor.
        sensor: u16,
        /// What it read.
        value: f64,
    },
    /// A newtype variant holding a string.
    Text(String),
    /// A tuple variant with an option.
    Pair(i32, Option<u64>),
}

impl Record {
    /// Message `seq` of `producer`'s stream.
    pub fn new(producer: u32, seq: u64) -> Record {
        let hash = mix(seq ^ (u64::from(producer) << 48));
        Record {
            producer,
            seq,
            label: format!("record {seq} of producer {producer}"),
            // Shifted by varying amounts: varints of every length.
            values: (0..seq % 9).map(|i| hash >> (i * 8)).collect(),
            kind: match seq % 4 {
                0 => Kind::Heartbeat,
                1 => Kind::Reading {
                    sensor: hash as u16,
                    value: seq as f64 / 8.0,
                },
                2 => Kind::Text(format!("{hash:x}")),
                _ => Kind::Pair(hash as i32, (seq % 3 == 0).then_some(hash)),
            },
        }
    }

    /// Whether it is exactly what its producer and sequence number say.
    pub fn is_intact(&self) -> bool {
        *self == Record::new(self.producer, self.seq)
    }
}

/// A plain-old-data message: no padding, every bit pattern valid. 48 bytes,
/// 8-aligned. Serde too, so that a test can open its channel with the other
/// codec.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable, Serialize, Deserialize)]
#[repr(C)]
pub struct Sample {
    /// Its place in its source's stream.
    pub seq: u64,
    /// Which source wrote it.
    pub source: u32,
    /// Bit flags, by `seq`.
    pub flags: u32,
    /// A measurement.
    pub value: f64,
    /// Raw readings.
    pub readings: [u32; 4],
    /// A hash of all the fields above.
    pub check: u64,
}

impl Sample {
    /// Sample `seq` of `source`.
    pub fn new(source: u32, seq: u64) -> Sample {
        let mut sample = Sample::zeroed();
        sample.fill(source, seq);
        sample
    }

    /// Makes this sample `seq` of `source` by writing every field in place,
    /// as a sender does into a reserved slot; allocates nothing.
    pub fn fill(&mut self, source: u32, seq: u64) {
        let hash = mix(seq ^ (u64::from(source) << 40));
        self.seq = seq;
        self.source = source;
        self.flags = (seq % 32) as u32;
        self.value = seq as f64 * 0.25 - 1000.0;
        self.readings = [
            hash as u32,
            (hash >> 16) as u32,
            (hash >> 32) as u32,
            !hash as u32,
        ];
        self.check = mix(hash ^ u64::from(self.flags));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_differ_by_producer_and_seq_and_use_every_variant() {
        assert_ne!(Record::new(0, 5), Record::new(1, 5));
        assert_ne!(Record::new(0, 5), Record::new(0, 6));
        let kinds: Vec<Kind> = (0..4).map(|seq| Record::new(0, seq).kind).collect();
        assert!(matches!(
            kinds.as_slice(),
            [
                Kind::Heartbeat,
                Kind::Reading { .. },
                Kind::Text(_),
                Kind::Pair(..)
            ]
        ));
        let mut tampered = Record::new(2, 77);
        assert!(tampered.is_intact());
        tampered.values.pop();
        assert!(!tampered.is_intact());
    }

    #[test]
    fn filling_in_place_overwrites_every_field() {
        let mut sample = Sample::new(9, 1234);
        bytemuck::bytes_of_mut(&mut sample).fill(0xa5);
        sample.fill(3, 17);
        assert_eq!(sample, Sample::new(3, 17));
        assert_ne!(Sample::new(3, 17), Sample::new(4, 17));
        assert_eq!(std::mem::size_of::<Sample>(), 48);
    }
}
