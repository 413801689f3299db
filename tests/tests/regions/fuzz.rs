//! No panic on any header: a property test over corrupted header fields.

use std::fs;
use std::time::Duration;

use ipc_core::layout::{HEADER_SIZE, MAGIC};
use ipc_core::{Layout, RegionOptions};

use crate::{field, make_region_file, read_u32, temp_dir};

#[test]
fn corrupted_headers_never_panic() {
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// (offset, width) of every header field.
    const FIELDS: [(usize, usize); 13] = [
        (0, 8),
        (8, 4),
        (12, 4),
        (16, 4),
        (20, 4),
        (24, 4),
        (28, 4),
        (32, 8),
        (40, 8),
        (48, 8),
        (56, 8),
        (64, 8),
        (72, 8),
    ];

    let dir = temp_dir();
    let raw = make_region_file(
        &dir.path().join("raw"),
        RegionOptions::new().size(4096),
        b"raw",
    );
    let spsc = make_region_file(
        &dir.path().join("spsc"),
        RegionOptions::new().layout(ipc_core::spsc::layout(4096, 256).unwrap()),
        b"",
    );
    let ready = u64::from(read_u32(&raw, field::INIT));
    let target = dir.path().join("case");

    let value = prop_oneof![
        any::<u64>(),
        prop::sample::select(vec![
            0,
            1,
            2,
            7,
            32,
            64,
            128,
            255,
            256,
            384,
            768,
            4095,
            4096,
            4097,
            8192,
            4096 + 512,
            1 << 40,
            u64::from(u32::MAX),
            u64::MAX,
            1 << 63,
            ready,
            MAGIC,
        ]),
        0u64..10_000,
    ];
    let strategy = (
        any::<bool>(),
        vec((0..FIELDS.len(), value), 0..4),
        option::weighted(0.2, (0usize..HEADER_SIZE as usize, vec(any::<u8>(), 1..32))),
        option::weighted(0.2, 0usize..12_000),
    );
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(use_spsc, patches, scribble, new_len)| {
            let mut bytes = if use_spsc { spsc.clone() } else { raw.clone() };
            for (field, value) in patches {
                let (offset, width) = FIELDS[field];
                bytes[offset..offset + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
            if let Some((offset, data)) = scribble {
                for (i, byte) in data.into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(offset + i) {
                        *slot = byte;
                    }
                }
            }
            if let Some(len) = new_len {
                bytes.resize(len, 0);
            }
            fs::write(&target, &bytes).unwrap();
            let opened = RegionOptions::new()
                .init_timeout(Duration::ZERO)
                .open_file(&target);
            let region = match opened {
                Ok(region) => region,
                Err(e) => {
                    // Every error renders.
                    prop_assert!(!e.to_string().is_empty());
                    return Ok(());
                }
            };
            let len = bytes.len() as u64;
            let layout: Layout = *region.layout();
            prop_assert_eq!(region.len(), len);
            prop_assert_eq!(layout.total_size, len);
            prop_assert!(layout.data_offset >= HEADER_SIZE);
            prop_assert!(layout
                .data_offset
                .checked_add(layout.data_size)
                .is_some_and(|end| end <= len));
            prop_assert_eq!(region.data_len(), layout.data_size);
            // Touch every byte of the data area the region claims: a bad
            // bound would read outside the mapping (SIGSEGV/SIGBUS).
            // (Through the raw pointer: `read_at` serves raw regions only.)
            let mut data = vec![0u8; layout.data_size as usize];
            // SAFETY: the data area the region claims is what is under
            // test; nothing else maps this file.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    region.data_ptr().as_ptr(),
                    data.as_mut_ptr(),
                    data.len(),
                )
            };
            let start = layout.data_offset as usize;
            prop_assert_eq!(&data[..], &bytes[start..start + data.len()]);
            if let Some(last) = layout.data_size.checked_sub(1) {
                // SAFETY: as above, the last byte the region claims.
                unsafe { region.data_ptr().as_ptr().add(last as usize).write(0x5A) };
            }
            Ok(())
        })
        .unwrap();
}
