//! Unique POSIX shm names that never outlive their test.
//!
//! ```
//! use ipc_core::RegionOptions;
//! use ipc_tests::name::ShmName;
//!
//! let name = ShmName::new("doc");
//! let region = RegionOptions::new().size(4096).persist(true).create_shm(&name)?;
//! drop(region);
//! assert!(name.dev_shm().exists()); // persisted...
//! drop(name);                       // ...until the guard removes it
//! # Ok::<(), ipc_core::Error>(())
//! ```

use std::fmt;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// Names handed out by this process so far.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A shm name (`/ipc-tests-<pid>-<n>-<tag>`) that no other test or process
/// uses; the object under it, if any, is removed when the guard drops, also
/// when the test fails. Dereferences to the name.
#[derive(Debug)]
pub struct ShmName(String);

impl ShmName {
    /// A fresh name ending in `tag` (which says what the test uses it for).
    /// An object left under it by an earlier process with the same pid is
    /// removed first.
    pub fn new(tag: &str) -> ShmName {
        // Relaxed: the counter only has to hand out distinct numbers.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        ShmName::adopt(format!("/ipc-tests-{}-{n}-{tag}", std::process::id()))
    }

    /// Takes charge of `name`: removes any object under it now and when the
    /// guard drops.
    pub fn adopt(name: String) -> ShmName {
        let _ = ipc_core::remove_shm(&name);
        ShmName(name)
    }

    /// The name, with its leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where Linux shows the object: `/dev/shm/<name without the slash>`.
    pub fn dev_shm(&self) -> PathBuf {
        PathBuf::from("/dev/shm").join(self.0.trim_start_matches('/'))
    }
}

impl Deref for ShmName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = ipc_core::remove_shm(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_valid_and_removed_on_drop() {
        let (a, b) = (ShmName::new("same"), ShmName::new("same"));
        assert_ne!(a.as_str(), b.as_str());
        assert!(ipc_core::region::shm_name(&a).is_ok(), "{a}");
        std::fs::write(a.dev_shm(), b"left by a test").unwrap();
        let path = a.dev_shm();
        drop(a);
        assert!(!path.exists(), "{} left behind", path.display());
    }

    #[test]
    fn an_adopted_name_is_cleared_at_once() {
        let name = ShmName::new("adopt");
        std::fs::write(name.dev_shm(), b"stale").unwrap();
        let adopted = ShmName::adopt(name.as_str().to_owned());
        assert!(!adopted.dev_shm().exists());
    }
}
