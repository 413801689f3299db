//! How a channel's messages become bytes, and what that makes them: each
//! codec describes its messages for the region header (see
//! [`MessageType`]).

use crate::layout::MessageType;
use crate::Error;

/// A channel codec: how `T` is carried. Implemented by [`Bytes`],
/// [`Serde`] and [`Pod`] only.
pub trait Codec<T: ?Sized>: sealed::Sealed {
    /// The description of the channel's messages kept in its header.
    fn message_type() -> MessageType;

    /// Whether opening a channel insists that its header describes the same
    /// messages (raw bytes take any region).
    fn typed() -> bool;

    /// The largest message, given what the builder was told.
    fn max_message(chosen: Option<u64>) -> u64;

    /// Checks that a region's largest message suits this codec.
    fn check(max_message: u64) -> Result<(), Error>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Bytes {}
    #[cfg(feature = "serde")]
    impl Sealed for super::Serde {}
    #[cfg(feature = "pod")]
    impl Sealed for super::Pod {}
}

/// Default largest message of encoded and byte channels.
const DEFAULT_MAX_MESSAGE: u64 = 4096;

/// Raw byte messages: no encoding, no type.
#[derive(Clone, Copy, Debug)]
pub struct Bytes;

impl Codec<[u8]> for Bytes {
    fn message_type() -> MessageType {
        MessageType {
            tag: 0,
            name: String::new(),
        }
    }

    fn typed() -> bool {
        false
    }

    fn max_message(chosen: Option<u64>) -> u64 {
        chosen.unwrap_or(DEFAULT_MAX_MESSAGE)
    }

    fn check(_: u64) -> Result<(), Error> {
        Ok(())
    }
}

/// The description of `T` carried by `codec`: its name, size, alignment.
#[cfg(any(feature = "serde", feature = "pod"))]
fn describe<T>(codec: &str) -> MessageType {
    MessageType::new(format!(
        "{}, {} B, align {}, {codec}",
        std::any::type_name::<T>(),
        std::mem::size_of::<T>(),
        std::mem::align_of::<T>(),
    ))
}

/// Messages of a `serde` type, encoded with bincode 2.0.1's standard
/// configuration (varint integers, little-endian).
#[cfg(feature = "serde")]
#[derive(Clone, Copy, Debug)]
pub struct Serde;

/// The bincode version the serde codec speaks, part of its description:
/// the dependency is pinned to it.
#[cfg(feature = "serde")]
pub(crate) const BINCODE: &str = "serde with bincode 2.0.1 (standard config)";

#[cfg(feature = "serde")]
impl<T> Codec<T> for Serde
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    fn message_type() -> MessageType {
        describe::<T>(BINCODE)
    }

    fn typed() -> bool {
        true
    }

    fn max_message(chosen: Option<u64>) -> u64 {
        chosen.unwrap_or(DEFAULT_MAX_MESSAGE)
    }

    fn check(_: u64) -> Result<(), Error> {
        Ok(())
    }
}

/// Plain-old-data messages (`bytemuck::Pod`: no padding, every bit pattern
/// valid), written and read in place as their bytes.
///
/// Why bytemuck rather than zerocopy: one trait, `Pod`, says both "may be
/// read from any bytes" and "may be written as bytes", its derive checks
/// both at compile time (no padding, all fields `Pod`), and it has no
/// dependencies; zerocopy's finer traits (`FromBytes`, `IntoBytes`,
/// `Immutable`, `KnownLayout`) buy nothing here, where a message is always
/// a whole `T` at an 8-aligned offset.
#[cfg(feature = "pod")]
#[derive(Clone, Copy, Debug)]
pub struct Pod;

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> Codec<T> for Pod {
    fn message_type() -> MessageType {
        describe::<T>("plain old data (bytemuck::Pod)")
    }

    fn typed() -> bool {
        true
    }

    fn max_message(_: Option<u64>) -> u64 {
        const {
            assert!(
                std::mem::align_of::<T>() <= 8,
                "a Pod channel's type must be at most 8-aligned (payloads are)"
            )
        };
        std::mem::size_of::<T>() as u64
    }

    fn check(max_message: u64) -> Result<(), Error> {
        if max_message == std::mem::size_of::<T>() as u64 {
            return Ok(());
        }
        Err(Error::InvalidLayout {
            reason: format!(
                "the channel's messages are {max_message} bytes, not the {} of {}",
                std::mem::size_of::<T>(),
                std::any::type_name::<T>()
            ),
        })
    }
}
