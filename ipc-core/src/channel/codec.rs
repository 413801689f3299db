//! How a channel's messages become bytes, and what that makes them: each
//! codec describes its messages for the region header (see
//! [`MessageType`]).

#[cfg(feature = "serde")]
use super::nesting::Bounded;
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
///
/// Decoding trusts nothing a peer wrote: a length prefix may claim at most
/// 16 bytes of memory per byte of its message (more is refused before
/// anything is allocated), and a message may nest at most 128 levels deep
/// (deeper is refused before the stack runs out). Either is a
/// [`RecvError::Decode`](super::RecvError::Decode), and the channel goes on.
#[cfg(feature = "serde")]
#[derive(Clone, Copy, Debug)]
pub struct Serde;

/// The bincode version the serde codec speaks, part of its description:
/// the dependency is pinned to it.
#[cfg(feature = "serde")]
pub(crate) const BINCODE: &str = "serde with bincode 2.0.1 (standard config)";

/// The most memory a decoded value may claim per byte of its encoding.
///
/// bincode counts claims against a configured limit before it allocates:
/// a string or byte buffer claims its length (at least one byte each in the
/// encoding), an integer its size in memory (a `u128` claims 16 bytes for a
/// varint of 1). So no message a sender encoded claims more than 16 bytes
/// per encoded byte, and a hostile length prefix claiming more than that is
/// refused before anything is allocated.
#[cfg(feature = "serde")]
const CLAIM_PER_BYTE: usize = 16;

/// `1 << bits`, or `usize::MAX` where that does not fit.
#[cfg(feature = "serde")]
const fn limit(bits: u32) -> usize {
    if bits < usize::BITS {
        1 << bits
    } else {
        usize::MAX
    }
}

/// Decodes one `T` from `bytes` (a whole message), with what it may claim
/// bounded by the message's own length: at most [`CLAIM_PER_BYTE`] times
/// it, rounded up to a power of 16 (the limit is a const generic, so each
/// power is a separate instantiation; 16 apart keeps them few), and its
/// nesting by [`MAX_DEPTH`](super::nesting::MAX_DEPTH). Returns the value
/// and the bytes it used.
#[cfg(feature = "serde")]
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    let claim = bytes.len().saturating_mul(CLAIM_PER_BYTE);
    macro_rules! bounded_by_the_first_limit_above_claim {
        ($($bits:literal)*) => {$(
            if claim <= limit($bits) {
                let config = bincode::config::standard().with_limit::<{ limit($bits) }>();
                return bincode::serde::seed_decode_from_slice(Bounded::new(), bytes, config);
            }
        )*};
    }
    bounded_by_the_first_limit_above_claim!(16 20 24 28 32 36 40 44 48);
    Err(bincode::error::DecodeError::LimitExceeded)
}

/// The configuration messages are encoded with (decoding adds a limit,
/// which does not change the encoding).
#[cfg(feature = "serde")]
pub(crate) fn encoding() -> bincode::config::Configuration {
    bincode::config::standard()
}

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

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;
    use bincode::error::DecodeError;

    fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, encoding()).unwrap()
    }

    #[test]
    fn every_encoding_decodes_within_its_bound() {
        // The most claimed per encoded byte: a `u128` of 0 claims 16 bytes
        // for one; a char 4. Lengths on both sides of each limit: a factor
        // below 16 refuses the 8192-byte vector of u128.
        for count in [0, 1, 100, 4093, 4094, 8000, 8189, 8190, 70_000, 1 << 20] {
            let wide = vec![0u128; count];
            let bytes = encode(&wide);
            let (back, used) = decode::<Vec<u128>>(&bytes).unwrap();
            assert_eq!((back, used), (wide, bytes.len()), "{count} u128");

            let chars = vec!['a'; count];
            let bytes = encode(&chars);
            assert_eq!(decode::<Vec<char>>(&bytes).unwrap().0, chars);

            let text = "é".repeat(count);
            let bytes = encode(&text);
            assert_eq!(decode::<String>(&bytes).unwrap().0, text);
        }
    }

    #[test]
    fn a_length_claiming_more_than_the_message_is_refused_before_allocating() {
        // A varint marker (253: 8 bytes follow), then the claimed length.
        for claimed in [1u64 << 31, 1 << 40, 1 << 63, u64::MAX] {
            let mut bytes = vec![253];
            bytes.extend_from_slice(&claimed.to_le_bytes());
            // serde's own `Vec` visitor caps what it reserves; it reads
            // element by element and runs out of message.
            assert!(decode::<Vec<u8>>(&bytes).is_err());
            // Strings and byte buffers are allocated whole by bincode.
            for result in [
                decode::<String>(&bytes).map(drop),
                decode::<serde_bytes_like::ByteBuf>(&bytes).map(drop),
                decode::<std::path::PathBuf>(&bytes).map(drop),
                decode::<Box<str>>(&bytes).map(drop),
            ] {
                assert!(
                    matches!(result, Err(DecodeError::LimitExceeded)),
                    "{claimed}: {result:?}"
                );
            }
        }
    }

    /// Recursive types of every shape serde recurses through: an enum's
    /// newtype variant, a sequence, an option inside a newtype struct.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Nest {
        End,
        More(Box<Nest>),
    }
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Tree {
        kids: Vec<Tree>,
    }
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Chain(Option<Box<Chain>>);

    fn nest(depth: usize) -> Nest {
        (0..depth).fold(Nest::End, |inner, _| Nest::More(Box::new(inner)))
    }

    /// Decodes on a thread with a small stack, as a receiver's may be.
    fn decode_on_small_stack<T>(bytes: Vec<u8>) -> Result<T, DecodeError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || decode::<T>(&bytes).map(|(value, _)| value))
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn a_message_nesting_deeper_than_the_bound_is_refused_without_exhausting_the_stack() {
        // One byte a level: 10^5 levels would need megabytes of stack.
        let levels = 100_000;
        let mut deep_enum = vec![1u8; levels];
        deep_enum.push(0);
        let deep_seq = vec![1u8; levels];
        let deep_option = vec![1u8; levels];
        let refused = [
            decode_on_small_stack::<Nest>(deep_enum).map(drop),
            decode_on_small_stack::<Tree>(deep_seq).map(drop),
            decode_on_small_stack::<Chain>(deep_option).map(drop),
        ];
        for result in refused {
            let reason = result.unwrap_err().to_string();
            assert!(reason.contains("nests deeper than 128"), "{reason}");
        }
        // Below the bound, all is decoded.
        let bytes = encode(&nest(100));
        assert_eq!(decode_on_small_stack::<Nest>(bytes).unwrap(), nest(100));
    }

    #[test]
    fn the_bounded_decoder_decodes_what_the_plain_one_does() {
        // `IpAddr` is encoded one way for human-readable formats and
        // another for bincode: the wrapper must say which it is.
        let addresses: Vec<std::net::IpAddr> = vec![[127, 0, 0, 1].into(), [0xfe80u16; 8].into()];
        let bytes = encode(&addresses);
        assert_eq!(
            decode::<Vec<std::net::IpAddr>>(&bytes).unwrap().0,
            addresses
        );
        let map: std::collections::BTreeMap<String, (Option<u8>, char)> =
            [("a".into(), (Some(1), 'x')), ("b".into(), (None, 'é'))].into();
        let bytes = encode(&map);
        assert_eq!(
            decode::<std::collections::BTreeMap<String, (Option<u8>, char)>>(&bytes).unwrap(),
            (map, bytes.len())
        );
        let borrowed: (String, Vec<u8>, [u16; 3], ()) = ("text".into(), vec![1, 2], [7, 8, 9], ());
        let bytes = encode(&borrowed);
        assert_eq!(
            decode::<(String, Vec<u8>, [u16; 3], ())>(&bytes).unwrap().0,
            borrowed
        );
    }

    /// A byte buffer as serde_bytes would give it (`deserialize_byte_buf`).
    mod serde_bytes_like {
        #[derive(Debug)]
        pub struct ByteBuf;

        impl<'de> serde::Deserialize<'de> for ByteBuf {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = ByteBuf;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_byte_buf<E>(self, _: Vec<u8>) -> Result<ByteBuf, E> {
                        Ok(ByteBuf)
                    }
                }
                d.deserialize_byte_buf(Visitor)
            }
        }
    }
}
