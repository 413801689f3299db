//! Iterating over a receiver: blocking ([`Iter`]) or what is there now
//! ([`TryIter`]).
//!
//! Items are `Result`s: a message that does not decode (or a plain-old-data
//! message of the wrong size) is consumed and reported as an `Err` item, and
//! the iteration goes on, so no loss passes unseen. `Disconnected` (and, for
//! [`TryIter`], `Empty`) ends it quietly, as std's `Receiver::iter` ends;
//! corruption is reported as one last `Err` item, since the ring cannot go
//! on. Once ended, an iterator stays ended.

use std::fmt;
use std::iter::FusedIterator;

use super::{Block, Receiver};
use crate::channel::errors::RecvError;
#[cfg(feature = "pod")]
use crate::channel::Pod;
#[cfg(feature = "serde")]
use crate::channel::Serde;
use crate::channel::{Bytes, Codec};

/// A receiver whose messages can be had as owned values. Sealed: not
/// nameable outside the crate.
pub trait Receive {
    /// The owned message.
    type Message;

    /// The next message, waiting for it or not.
    fn receive(&mut self, wait: bool) -> Result<Self::Message, RecvError>;
}

fn block(wait: bool) -> Block {
    if wait {
        Block::Forever
    } else {
        Block::Never
    }
}

impl Receive for Receiver<[u8], Bytes> {
    type Message = Vec<u8>;

    /// Copied out (trusting nothing) into the receiver's scratch buffer,
    /// then into a `Vec` of the message's length.
    fn receive(&mut self, wait: bool) -> Result<Vec<u8>, RecvError> {
        if self.scratch.len() as u64 != self.max_message {
            self.scratch = vec![0; self.max_message as usize];
        }
        let len = self.rx.copy(&mut self.scratch, block(wait))?;
        Ok(self.scratch[..len].to_vec())
    }
}

#[cfg(feature = "serde")]
impl<T> Receive for Receiver<T, Serde>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    type Message = T;

    fn receive(&mut self, wait: bool) -> Result<T, RecvError> {
        self.recv_with(block(wait))
    }
}

#[cfg(feature = "pod")]
impl<T: bytemuck::Pod> Receive for Receiver<T, Pod> {
    type Message = T;

    fn receive(&mut self, wait: bool) -> Result<T, RecvError> {
        self.recv_with(block(wait))
    }
}

/// One step of either iterator; see the module docs.
fn step<R: Receive>(
    rx: &mut R,
    wait: bool,
    done: &mut bool,
) -> Option<Result<R::Message, RecvError>> {
    if *done {
        return None;
    }
    match rx.receive(wait) {
        Ok(message) => Some(Ok(message)),
        Err(RecvError::Empty | RecvError::Disconnected) => {
            *done = true;
            None
        }
        // Consumed; the channel goes on.
        Err(e @ (RecvError::Decode { .. } | RecvError::WrongSize { .. })) => Some(Err(e)),
        Err(e) => {
            *done = true;
            Some(Err(e))
        }
    }
}

/// The messages of a [`Receiver`], waiting for each; ends once every sender
/// is gone and everything sent has been received. See
/// [`Receiver::iter`].
#[must_use = "iterators are lazy"]
pub struct Iter<'a, T: ?Sized, C> {
    rx: &'a mut Receiver<T, C>,
    done: bool,
}

/// The messages of a [`Receiver`] that are there now; ends at the first
/// `Empty` (or `Disconnected`). See [`Receiver::try_iter`].
#[must_use = "iterators are lazy"]
pub struct TryIter<'a, T: ?Sized, C> {
    rx: &'a mut Receiver<T, C>,
    done: bool,
}

impl<T: ?Sized, C: Codec<T>> Receiver<T, C>
where
    Self: Receive,
{
    /// Iterates over the messages, waiting for each, as std's and
    /// crossbeam's `Receiver::iter` do; ends (`None`) once every sender is
    /// gone and everything sent has been received.
    ///
    /// Items are `Result`s, so that nothing is lost unseen: a message that
    /// does not decode as `T` ([`RecvError::Decode`],
    /// [`RecvError::WrongSize`]) is consumed and yielded as an `Err`, and
    /// the iteration goes on; [`RecvError::Corrupted`] is yielded as an
    /// `Err` and ends it. A byte channel yields each message as a
    /// `Vec<u8>` (one allocation each; `recv` or `recv_into` in a loop
    /// allocate nothing).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "serde")] {
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::serde::<String>().anonymous()?;
    /// let (mut tx, mut rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// let producer = std::thread::spawn(move || {
    ///     for word in ["one", "two", "three"] {
    ///         tx.send(word.to_string()).unwrap();
    ///     }
    /// }); // `tx` drops here: the iteration ends after "three"
    /// let mut words = Vec::new();
    /// for word in rx.iter() {
    ///     words.push(word?);
    /// }
    /// assert_eq!(words, ["one", "two", "three"]);
    /// producer.join().unwrap();
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&mut self) -> Iter<'_, T, C> {
        Iter {
            rx: self,
            done: false,
        }
    }

    /// Iterates over the messages there now, without waiting; ends at the
    /// first `Empty` or `Disconnected`. Items as for [`iter`](Self::iter).
    ///
    /// # Examples
    /// ```
    /// use ipc_core::channel::Channel;
    ///
    /// let endpoint = Channel::bytes().anonymous()?;
    /// let (mut tx, mut rx) = (endpoint.sender()?, endpoint.receiver()?);
    /// tx.send(b"a")?;
    /// tx.send(b"bc")?;
    /// let now: Vec<Vec<u8>> = rx.try_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(now, [b"a".to_vec(), b"bc".to_vec()]);
    /// assert_eq!(rx.try_iter().count(), 0); // empty, and the sender is still there
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&mut self) -> TryIter<'_, T, C> {
        TryIter {
            rx: self,
            done: false,
        }
    }
}

impl<T: ?Sized, C> Iterator for Iter<'_, T, C>
where
    Receiver<T, C>: Receive,
{
    type Item = Result<<Receiver<T, C> as Receive>::Message, RecvError>;

    fn next(&mut self) -> Option<Self::Item> {
        step(self.rx, true, &mut self.done)
    }
}

impl<T: ?Sized, C> Iterator for TryIter<'_, T, C>
where
    Receiver<T, C>: Receive,
{
    type Item = Result<<Receiver<T, C> as Receive>::Message, RecvError>;

    fn next(&mut self) -> Option<Self::Item> {
        step(self.rx, false, &mut self.done)
    }
}

impl<T: ?Sized, C> FusedIterator for Iter<'_, T, C> where Receiver<T, C>: Receive {}

impl<T: ?Sized, C> FusedIterator for TryIter<'_, T, C> where Receiver<T, C>: Receive {}

/// `for message in &mut rx`: as [`Receiver::iter`]. (Receiving takes
/// `&mut self`, so it is `&mut Receiver`, not `&Receiver` as in std.)
impl<'a, T: ?Sized, C: Codec<T>> IntoIterator for &'a mut Receiver<T, C>
where
    Receiver<T, C>: Receive,
{
    type Item = Result<<Receiver<T, C> as Receive>::Message, RecvError>;
    type IntoIter = Iter<'a, T, C>;

    fn into_iter(self) -> Iter<'a, T, C> {
        self.iter()
    }
}

impl<T: ?Sized, C> fmt::Debug for Iter<'_, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("done", &self.done).finish()
    }
}

impl<T: ?Sized, C> fmt::Debug for TryIter<'_, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").field("done", &self.done).finish()
    }
}
