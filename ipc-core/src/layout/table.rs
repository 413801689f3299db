//! The participant table's geometry: `count` slots of [`SLOT_SIZE`] bytes
//! right after the header (what a slot holds is `crate::participants`'s).

use super::ALIGN;

/// Bytes of one slot.
pub const SLOT_SIZE: u64 = 64;
/// Most slots a table may have: a token's index has 16 bits.
pub const MAX_PARTICIPANTS: u64 = 1 << 16;

/// Bytes a table of `count` slots takes, rounded up to the region's
/// alignment.
pub const fn table_size(count: u64) -> u64 {
    (count * SLOT_SIZE).next_multiple_of(ALIGN)
}
