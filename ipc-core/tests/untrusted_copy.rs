//! The untrusted receive path under a racing writer, checked by
//! ThreadSanitizer (`scripts/tsan.sh` runs this binary instrumented).
//!
//! While a thread, standing in for a hostile process, keeps storing into
//! the payload of committed messages, `recv_into` copies them out. Every
//! store is an atomic word of one repeated byte, so every word the copy
//! returns must be one too (a torn word would show a non-atomic copy). The
//! decisive check is ThreadSanitizer's: a plain `memcpy` racing with those
//! stores is a data race it reports, the per-word atomic copy is none.
//!
//! A plain `main` on raw pthreads, without the test harness: the harness
//! and `std::thread` synchronise through the uninstrumented standard
//! library, which ThreadSanitizer would report as races of their own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ipc_core::{spsc, Region, RegionOptions};

const CAPACITY: u64 = 4096;
const LEN: usize = 512;
const MESSAGES: usize = 20_000;

struct Shared {
    region: Arc<Region>,
    stop: AtomicBool,
}

/// The word at `offset` of the ring's buffer (after its control block).
fn buffer_word(region: &Region, offset: u64) -> &AtomicU64 {
    let at = spsc::CONTROL_SIZE + offset;
    assert!(at % 8 == 0 && at + 8 <= region.data_len());
    // SAFETY: inside the data area and 8-aligned; an atomic may alias the
    // ring's memory.
    unsafe { &*(region.data_ptr().as_ptr().add(at as usize) as *const AtomicU64) }
}

extern "C" fn scribble(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `main` passes a `Shared` that outlives this thread (it joins).
    let shared = unsafe { &*(arg as *const Shared) };
    let mut byte = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        byte = byte % 254 + 1;
        // Payload words only (a record starts with a header word, then the
        // payload; these offsets skip every 65th word, where headers of
        // the 520-byte records of this test fall, and replace only words
        // that hold the payload's 0xAA bytes).
        for offset in (8..CAPACITY).step_by(8) {
            let _ = buffer_word(&shared.region, offset).compare_exchange(
                0xAAAA_AAAA_AAAA_AAAA,
                byte * 0x0101_0101_0101_0101,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
    std::ptr::null_mut()
}

fn main() {
    let region = Arc::new(
        RegionOptions::new()
            .layout(spsc::layout(CAPACITY, LEN as u64).unwrap())
            .create_anonymous()
            .unwrap(),
    );
    let (mut producer, mut consumer) = spsc::channel(region.clone()).unwrap();
    let shared = Shared {
        region,
        stop: AtomicBool::new(false),
    };
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `shared` lives until after the join below.
    let rc = unsafe {
        libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            scribble,
            &shared as *const Shared as *mut libc::c_void,
        )
    };
    assert_eq!(rc, 0);
    let mut buf = [0u8; LEN];
    let mut torn = 0;
    for _ in 0..MESSAGES {
        producer.try_send(&[0xAA; LEN]).unwrap();
        assert_eq!(consumer.recv_into(&mut buf), Ok(LEN));
        torn += buf
            .chunks_exact(8)
            .filter(|word| word.iter().any(|&b| b != word[0]))
            .count();
    }
    shared.stop.store(true, Ordering::Relaxed);
    // SAFETY: joins the thread created above, once.
    let joined = unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
    assert_eq!(joined, 0);
    assert_eq!(torn, 0, "recv_into returned torn words");
    println!("untrusted_copy: {MESSAGES} messages copied while scribbled over, no torn word");
}
