//! The messages of the typed-channel rows: a 32-byte plain-old-data
//! [`Quote`], the same 32 bytes as a raw byte message ([`quote_bytes`]),
//! and a small serde [`Order`] with the same fields (its symbol a `String`,
//! its side an enum). Each is made from its sequence number and checked
//! against it in full, so a lost, reordered or corrupted message fails the
//! run.

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Bytes of a [`Quote`], and so of the byte rows they are compared with.
pub const SIZE: usize = std::mem::size_of::<Quote>();

/// The symbols messages cycle through: seven ASCII bytes each.
const SYMBOLS: [&str; 4] = ["BTC-USD", "ETH-USD", "SOL-EUR", "XRP-GBP"];

/// A plain-old-data quote: no padding, every bit pattern valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Quote {
    /// The message's sequence number.
    pub seq: u64,
    /// Price in ticks.
    pub price_ticks: i64,
    /// Quantity.
    pub quantity: u32,
    /// 0 buy, 1 sell.
    pub side: u32,
    /// The symbol, NUL-padded.
    pub symbol: [u8; 8],
}

impl Quote {
    /// Message `seq`.
    #[inline(always)]
    pub fn of(seq: u64) -> Quote {
        let mut symbol = [0u8; 8];
        symbol[..7].copy_from_slice(symbol_of(seq).as_bytes());
        Quote {
            seq,
            price_ticks: price_of(seq),
            quantity: quantity_of(seq),
            side: (seq % 2) as u32,
            symbol,
        }
    }

    /// Checks that this is message `seq`, every field of it.
    #[inline(always)]
    pub fn check(&self, seq: u64) -> Result<()> {
        let expected = Quote::of(seq);
        if *self == expected {
            Ok(())
        } else {
            Err(wrong(seq, &expected, self))
        }
    }
}

/// Message `seq` as raw bytes: the bytes of [`Quote::of`].
#[inline(always)]
pub fn quote_bytes(seq: u64) -> [u8; SIZE] {
    bytemuck::cast(Quote::of(seq))
}

/// Checks that `bytes` are message `seq`, every byte of them.
#[inline(always)]
pub fn check_quote_bytes(bytes: &[u8; SIZE], seq: u64) -> Result<()> {
    let expected = quote_bytes(seq);
    if *bytes == expected {
        Ok(())
    } else {
        Err(wrong(seq, &expected, bytes))
    }
}

/// Which side an [`Order`] is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Buying.
    Buy,
    /// Selling.
    Sell,
}

/// A small serde message: a [`Quote`]'s fields, the side an enum and the
/// symbol a `String`. Encoded (bincode 2, varint integers) it takes
/// [`Order::encoded_len`] bytes: 16 to 20 below sequence number 2³².
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The message's sequence number.
    pub seq: u64,
    /// Price in ticks.
    pub price_ticks: i64,
    /// Quantity.
    pub quantity: u32,
    /// Buy or sell.
    pub side: Side,
    /// The symbol.
    pub symbol: String,
}

impl Order {
    /// Message `seq` (its symbol allocated, as a sender's would be).
    #[inline(always)]
    pub fn of(seq: u64) -> Order {
        Order {
            seq,
            price_ticks: price_of(seq),
            quantity: quantity_of(seq),
            side: side_of(seq),
            symbol: symbol_of(seq).to_string(),
        }
    }

    /// Checks that this is message `seq`, every field of it (allocating
    /// nothing unless it is not).
    #[inline(always)]
    pub fn check(&self, seq: u64) -> Result<()> {
        if self.seq == seq
            && self.price_ticks == price_of(seq)
            && self.quantity == quantity_of(seq)
            && self.side == side_of(seq)
            && self.symbol == symbol_of(seq)
        {
            Ok(())
        } else {
            Err(wrong(seq, &Order::of(seq), self))
        }
    }

    /// Bytes of message `seq` encoded by the serde channel: bincode 2's
    /// standard configuration writes each integer as a varint (1 byte below
    /// 251, else a marker and 2, 4 or 8 bytes; signed ones zigzagged
    /// first), the enum's variant index as one, and the string as its
    /// length then its bytes.
    pub fn encoded_len(seq: u64) -> usize {
        fn varint(v: u64) -> usize {
            match v {
                0..=250 => 1,
                251..=0xffff => 3,
                0x1_0000..=0xffff_ffff => 5,
                _ => 9,
            }
        }
        let price = price_of(seq);
        let zigzag = ((price << 1) ^ (price >> 63)) as u64;
        let symbol = symbol_of(seq).len();
        varint(seq)
            + varint(zigzag)
            + varint(quantity_of(seq).into())
            + varint(side_of(seq) as u64)
            + varint(symbol as u64)
            + symbol
    }
}

#[inline(always)]
fn price_of(seq: u64) -> i64 {
    1_000_000 + (seq % 1000) as i64
}

#[inline(always)]
fn quantity_of(seq: u64) -> u32 {
    1 + (seq % 100) as u32
}

#[inline(always)]
fn side_of(seq: u64) -> Side {
    if seq % 2 == 0 {
        Side::Buy
    } else {
        Side::Sell
    }
}

#[inline(always)]
fn symbol_of(seq: u64) -> &'static str {
    SYMBOLS[(seq % SYMBOLS.len() as u64) as usize]
}

#[cold]
fn wrong(seq: u64, expected: &impl std::fmt::Debug, found: &impl std::fmt::Debug) -> Error {
    Error::Value {
        seq,
        expected: format!("{expected:?}"),
        found: format!("{found:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_check_against_their_own_sequence_number_only() {
        for seq in [0, 1, 250, 251, 65_535, 65_536, 1 << 32] {
            assert!(Quote::of(seq).check(seq).is_ok());
            assert!(Quote::of(seq).check(seq + 1).is_err());
            assert!(check_quote_bytes(&quote_bytes(seq), seq).is_ok());
            assert!(check_quote_bytes(&quote_bytes(seq), seq + 4).is_err());
            assert!(Order::of(seq).check(seq).is_ok());
            assert!(Order::of(seq).check(seq + 4).is_err());
        }
        let mut order = Order::of(5);
        order.symbol.push('!');
        assert!(order.check(5).is_err());
        let mut bytes = quote_bytes(5);
        bytes[31] ^= 1;
        assert!(check_quote_bytes(&bytes, 5).is_err());
    }

    #[test]
    fn encoded_len_is_what_the_serde_codec_writes() {
        let config = bincode::config::standard();
        for seq in [0, 1, 250, 251, 999, 65_535, 65_536, 1 << 20, 1 << 32] {
            let encoded = bincode::serde::encode_to_vec(Order::of(seq), config).unwrap();
            assert_eq!(encoded.len(), Order::encoded_len(seq), "message {seq}");
        }
        assert_eq!(SIZE, 32);
    }
}
