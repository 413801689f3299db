use std::time::Duration;

use super::*;

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
enum Side {
    Buy,
    Sell { limit: Option<i64> },
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Order {
    id: u64,
    item: String,
    quantities: Vec<u32>,
    side: Side,
}

fn order(id: u64) -> Order {
    Order {
        id,
        item: format!("item-{id}"),
        quantities: (0..(id % 7) as u32).collect(),
        side: match id % 3 {
            0 => Side::Buy,
            1 => Side::Sell { limit: None },
            _ => Side::Sell {
                limit: Some(-(id as i64)),
            },
        },
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    bytemuck::Pod,
    bytemuck::Zeroable,
    serde::Serialize,
    serde::Deserialize,
)]
#[repr(C)]
struct Tick {
    price: f64,
    volume: u64,
    venue: u32,
    flags: u32,
}

fn kinds() -> [Builder<Order, Serde>; 2] {
    let typed = Channel::serde::<Order>().capacity(16).max_message(256);
    [typed.clone().spsc(), typed.mpmc()]
}

fn shm_name(what: &str) -> String {
    format!("/ipc-core-channel-{what}-{}", std::process::id())
}

#[test]
fn serde_values_round_trip_on_both_rings() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        for round in 0..5u64 {
            for id in round * 10..round * 10 + 10 {
                tx.send(order(id)).unwrap();
            }
            for id in round * 10..round * 10 + 10 {
                assert_eq!(rx.recv().unwrap(), order(id), "{:?}", endpoint.kind());
            }
        }
        assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    }
}

#[test]
fn a_full_channel_hands_the_value_back() {
    for builder in kinds() {
        let endpoint = builder.capacity(2).anonymous().unwrap();
        let mut tx = endpoint.sender().unwrap();
        let _rx = endpoint.receiver().unwrap();
        let mut sent = 0;
        let refused = loop {
            match tx.try_send(order(sent)) {
                Ok(()) => sent += 1,
                Err(refused) => break refused,
            }
            assert!(sent < 1000, "never full");
        };
        assert_eq!(refused.failure, SendFailure::Full);
        assert_eq!(refused.value, order(sent));
        let timed_out = tx
            .send_timeout(order(sent), Duration::from_millis(10))
            .unwrap_err();
        assert_eq!(timed_out.failure, SendFailure::Timeout);
    }
}

#[test]
fn a_value_too_large_is_handed_back_and_nothing_is_sent() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        let mut big = order(1);
        big.item = "x".repeat(1000);
        let refused = tx.send(big.clone()).unwrap_err();
        assert!(
            matches!(refused.failure, SendFailure::TooLarge { max, .. } if max >= 256),
            "{:?}",
            refused.failure
        );
        assert_eq!(refused.value, big);
        assert_eq!(rx.try_recv(), Err(RecvError::Empty));
        tx.send(order(2)).unwrap();
        assert_eq!(rx.recv().unwrap(), order(2));
    }
}

#[test]
fn empty_encodings_are_messages_too() {
    let endpoint = Channel::serde::<()>().anonymous().unwrap();
    let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    tx.send(()).unwrap();
    tx.send(()).unwrap();
    assert_eq!(rx.try_recv(), Ok(()));
    assert_eq!(rx.try_recv(), Ok(()));
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
}

#[test]
fn bytes_that_do_not_decode_are_an_error_and_the_channel_goes_on() {
    for (i, builder) in kinds().into_iter().enumerate() {
        let name = shm_name(&format!("undecodable-{i}"));
        let endpoint = builder.create(&name).unwrap();
        let mut rx = endpoint.receiver().unwrap();
        // Raw bytes open any channel: the codec is bypassed.
        let raw = Channel::bytes().open(&name).unwrap();
        let mut raw_tx = raw.sender().unwrap();
        // A string length far past the message; a valid order with bytes
        // after it; an enum discriminant out of range.
        raw_tx.send(&[1, 0xfc, 0xff, 0xff, 0xff, 0x7f]).unwrap();
        let mut trailing = encode(&order(3));
        trailing.extend_from_slice(&[0, 0]);
        raw_tx.send(&trailing).unwrap();
        let mut bad_variant = encode(&order(4));
        let variant = bad_variant.len() - 1; // `Side::Buy`, the last field
        bad_variant[variant] = 9;
        raw_tx.send(&bad_variant).unwrap();
        drop(raw_tx);
        let mut tx = endpoint.sender().unwrap();
        tx.send(order(6)).unwrap();
        for _ in 0..3 {
            match rx.recv() {
                Err(RecvError::Decode { type_name, reason }) => {
                    assert!(type_name.ends_with("Order"), "{type_name}");
                    assert!(reason.contains("bincode 2.0.1"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(rx.recv().unwrap(), order(6));
    }
}

fn encode(value: &Order) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap()
}

#[test]
fn opening_as_another_type_or_codec_names_both() {
    let name = shm_name("mismatch");
    let _created = Channel::serde::<Order>().create(&name).unwrap();
    let as_pod = Channel::pod::<Tick>().open(&name).unwrap_err();
    let as_other = Channel::serde::<Vec<Order>>().open(&name).unwrap_err();
    for (err, wanted) in [(as_pod, "Tick"), (as_other, "Vec<")] {
        match err {
            Error::TypeMismatch { expected, found } => {
                assert!(expected.contains(wanted), "{expected}");
                assert!(
                    found.contains("Order") && found.contains("bincode"),
                    "{found}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(Channel::serde::<Order>().open(&name).is_ok());
    // Typed handles refuse an untyped channel.
    let raw_name = shm_name("mismatch-raw");
    let _raw = Channel::bytes().create(&raw_name).unwrap();
    match Channel::serde::<Order>().open(&raw_name).unwrap_err() {
        Error::TypeMismatch { found, .. } => assert!(found.contains("raw bytes"), "{found}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_same_type_under_another_codec_is_another_type() {
    let pod = Channel::pod::<Tick>().anonymous().unwrap().message_type();
    let serde = <Serde as Codec<Tick>>::message_type();
    assert_ne!(pod.tag, serde.tag);
    assert!(pod.name.contains("Tick, 24 B, align 8"), "{}", pod.name);
}

#[test]
fn pod_values_are_read_and_written_in_place() {
    for kind in [RingKind::Spsc, RingKind::Mpmc] {
        let builder = Channel::pod::<Tick>().capacity(8);
        let builder = match kind {
            RingKind::Spsc => builder.spsc(),
            RingKind::Mpmc => builder.mpmc(),
        };
        let endpoint = builder.anonymous().unwrap();
        assert_eq!(endpoint.region().layout().max_message, 24);
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        let tick = |n: u64| Tick {
            price: n as f64 / 4.0,
            volume: n,
            venue: n as u32 * 3,
            flags: 1,
        };
        tx.send(tick(1)).unwrap();
        let mut grant = tx.reserve().unwrap();
        *grant = tick(2);
        grant.volume += 1;
        grant.commit().unwrap();
        drop(tx.try_reserve().unwrap()); // dropped: nothing sent
        assert_eq!(*rx.recv_ref().unwrap(), tick(1));
        let expected = Tick {
            volume: 3,
            ..tick(2)
        };
        assert_eq!(rx.recv().unwrap(), expected);
        assert!(matches!(rx.try_recv_ref(), Err(RecvError::Empty)));
    }
}

#[test]
fn a_pod_message_of_the_wrong_size_is_an_error_and_the_channel_goes_on() {
    let name = shm_name("pod-size");
    let endpoint = Channel::pod::<Tick>().create(&name).unwrap();
    let mut rx = endpoint.receiver().unwrap();
    let mut raw = Channel::bytes().open(&name).unwrap().sender().unwrap();
    raw.send(&[7; 5]).unwrap();
    raw.send(&[0; 24]).unwrap();
    raw.send(&[]).unwrap();
    assert_eq!(
        rx.recv(),
        Err(RecvError::WrongSize {
            expected: 24,
            found: 5
        })
    );
    assert_eq!(rx.recv().unwrap(), bytemuck::Zeroable::zeroed());
    assert!(matches!(
        rx.recv_ref(),
        Err(RecvError::WrongSize { found: 0, .. })
    ));
    raw.send(&[0; 24]).unwrap();
    assert!(rx.recv_ref().is_ok());
}

#[test]
fn receivers_learn_that_every_sender_is_gone() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        tx.send(order(1)).unwrap();
        drop(tx);
        assert_eq!(rx.recv().unwrap(), order(1));
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvError::Disconnected)
        );
    }
}

#[test]
fn senders_learn_that_every_receiver_is_gone() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (mut tx, rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        drop(rx);
        let refused = tx.send(order(1)).unwrap_err();
        assert_eq!(refused.failure, SendFailure::Disconnected);
        assert_eq!(refused.value, order(1));
    }
}

#[test]
fn an_empty_channel_times_out() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (_tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(10)),
            Err(RecvError::Timeout)
        );
    }
}

#[test]
fn a_blocked_receiver_wakes_for_a_value_from_another_thread() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        let sender = std::thread::spawn(move || {
            for id in 0..1000 {
                tx.send(order(id)).unwrap();
            }
        });
        for id in 0..1000 {
            assert_eq!(rx.recv().unwrap(), order(id));
        }
        sender.join().unwrap();
    }
}

#[test]
fn in_place_calls_time_out_too() {
    let endpoint = Channel::pod::<Tick>().capacity(1).anonymous().unwrap();
    let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    let short = Duration::from_millis(10);
    assert!(matches!(
        rx.recv_ref_timeout(short),
        Err(RecvError::Timeout)
    ));
    while tx.try_send(bytemuck::Zeroable::zeroed()).is_ok() {}
    assert!(matches!(
        tx.reserve_timeout(short),
        Err(SendFailure::Timeout)
    ));
    assert!(rx.recv_ref_timeout(short).is_ok());
    assert!(tx.reserve_timeout(short).is_ok());

    let bytes = Channel::bytes()
        .max_message(64)
        .capacity(1)
        .anonymous()
        .unwrap();
    let (mut tx, mut rx) = (bytes.sender().unwrap(), bytes.receiver().unwrap());
    let mut buf = [0; 64];
    assert_eq!(
        rx.recv_into_timeout(&mut buf, short),
        Err(RecvError::Timeout)
    );
    while tx.try_send(&[1; 64]).is_ok() {}
    assert!(matches!(
        tx.reserve_timeout(64, short),
        Err(SendFailure::Timeout)
    ));
    assert_eq!(rx.recv_into_timeout(&mut buf, short), Ok(64));
}

#[test]
fn raw_byte_channels_keep_zero_copy() {
    let endpoint = Channel::bytes().max_message(64).anonymous().unwrap();
    let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    let mut grant = tx.reserve(5).unwrap();
    grant.copy_from_slice(b"hello");
    grant.commit().unwrap();
    tx.send(b"world").unwrap();
    assert_eq!(&*rx.recv().unwrap(), b"hello");
    let mut buf = [0; 64];
    let len = rx.recv_into(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"world");
    assert_eq!(endpoint.message_type().tag, 0);
}

#[test]
fn opening_waits_for_the_creator_up_to_the_timeout() {
    let name = shm_name("late");
    let missing = Channel::serde::<Order>()
        .open_timeout(Duration::from_millis(20))
        .open(&name)
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
    let opener = {
        let name = name.clone();
        std::thread::spawn(move || {
            Channel::serde::<Order>()
                .open_timeout(Duration::from_secs(10))
                .open(&name)
                .map(|endpoint| endpoint.kind())
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let _created = Channel::serde::<Order>().mpmc().create(&name).unwrap();
    assert_eq!(opener.join().unwrap().unwrap(), RingKind::Mpmc);
}

// ---------------------------------------------------------------------------
// What channel users reach for: iterators, len, try_clone, is_disconnected

/// A word of a channel's shared memory, for tests that corrupt it.
fn shared_word(region: &crate::Region, offset: u64) -> &crate::sync::AtomicU64 {
    assert!(offset % 8 == 0 && offset + 8 <= region.data_len());
    // SAFETY: inside the data area, 8-aligned; an atomic may alias memory
    // the ring handles access.
    unsafe { &*(region.data_ptr().as_ptr().add(offset as usize) as *const crate::sync::AtomicU64) }
}

const RELAXED: crate::sync::Ordering = crate::sync::Ordering::Relaxed;

#[test]
fn iter_yields_every_message_then_ends_when_the_senders_are_gone() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        // More than the capacity (16): the iterator waits for the rest.
        let producer = std::thread::spawn(move || {
            for id in 0..100 {
                tx.send(order(id)).unwrap();
            }
        });
        let got: Vec<Order> = rx.iter().map(Result::unwrap).collect();
        assert_eq!(got, (0..100).map(order).collect::<Vec<_>>());
        producer.join().unwrap();
        // Ended, and stays so.
        let mut iter = rx.iter();
        assert!(iter.next().is_none() && iter.next().is_none());
    }
}

#[test]
fn iterating_bytes_and_pod_channels_on_both_rings() {
    for mpmc in [false, true] {
        let pick = |b: Builder<[u8], Bytes>| if mpmc { b.mpmc() } else { b.spsc() };
        let endpoint = pick(Channel::bytes().capacity(8).max_message(32))
            .anonymous()
            .unwrap();
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        let sent: Vec<Vec<u8>> = (0..6u8).map(|n| vec![n; n as usize * 5]).collect();
        for msg in &sent {
            tx.send(msg).unwrap();
        }
        drop(tx);
        let mut got = Vec::new();
        for msg in &mut rx {
            got.push(msg.unwrap());
        }
        assert_eq!(got, sent, "mpmc: {mpmc}");

        let pod = Channel::pod::<Tick>().capacity(8);
        let endpoint = if mpmc { pod.mpmc() } else { pod.spsc() }
            .anonymous()
            .unwrap();
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        let tick = |n: u32| Tick {
            price: n as f64 / 2.0,
            volume: n as u64,
            venue: n,
            flags: !n,
        };
        for n in 0..5 {
            tx.send(tick(n)).unwrap();
        }
        let now: Vec<Tick> = rx.try_iter().map(Result::unwrap).collect();
        assert_eq!(now, (0..5).map(tick).collect::<Vec<_>>(), "mpmc: {mpmc}");
        drop(tx);
        assert_eq!(rx.iter().count(), 0);
    }
}

#[test]
fn try_iter_takes_what_is_there_and_ends_at_empty() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        assert_eq!(rx.try_iter().count(), 0);
        for id in 0..3 {
            tx.send(order(id)).unwrap();
        }
        let mut iter = rx.try_iter();
        assert_eq!(iter.next(), Some(Ok(order(0))));
        tx.send(order(3)).unwrap(); // sent during the iteration: taken too
        let rest: Vec<Order> = iter.map(Result::unwrap).collect();
        assert_eq!(rest, [order(1), order(2), order(3)]);
        // The sender is still there: empty, not disconnected.
        assert_eq!(rx.try_iter().count(), 0);
        tx.send(order(4)).unwrap();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [Ok(order(4))]);
    }
}

#[test]
fn a_message_that_does_not_decode_is_an_err_item_and_the_iteration_goes_on() {
    for (i, builder) in kinds().into_iter().enumerate() {
        let name = shm_name(&format!("iter-undecodable-{i}"));
        let endpoint = builder.create(&name).unwrap();
        let mut rx = endpoint.receiver().unwrap();
        // Raw bytes open any channel (one SPSC sender at a time: all raw).
        let mut raw = Channel::bytes().open(&name).unwrap().sender().unwrap();
        raw.send(&encode(&order(1))).unwrap();
        raw.send(&[1, 0xfc, 0xff, 0xff, 0xff, 0x7f]).unwrap();
        raw.send(&encode(&order(2))).unwrap();
        drop(raw);
        let items: Vec<_> = rx.iter().collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[0], Ok(order(1)));
        assert!(
            matches!(items[1], Err(RecvError::Decode { .. })),
            "{items:?}"
        );
        assert_eq!(items[2], Ok(order(2)));
    }
    let name = shm_name("iter-pod-size");
    let endpoint = Channel::pod::<Tick>().create(&name).unwrap();
    let mut rx = endpoint.receiver().unwrap();
    let mut raw = Channel::bytes().open(&name).unwrap().sender().unwrap();
    raw.send(&[7; 5]).unwrap();
    raw.send(&[0; 24]).unwrap();
    let items: Vec<_> = rx.try_iter().collect();
    assert_eq!(
        items,
        [
            Err(RecvError::WrongSize {
                expected: 24,
                found: 5
            }),
            Ok(bytemuck::Zeroable::zeroed())
        ]
    );
}

#[test]
fn a_corrupted_length_ends_the_iteration_with_an_err_item_and_no_panic() {
    // SPSC: the record header of the first message claims 4 GiB.
    let endpoint = Channel::bytes().spsc().max_message(64).anonymous().unwrap();
    let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    tx.send(&[1; 8]).unwrap();
    tx.send(&[2; 8]).unwrap();
    let msg_marker = u32::from_le_bytes(*b"MSG!") as u64;
    let header = shared_word(endpoint.region(), crate::spsc::CONTROL_SIZE);
    assert_eq!(header.load(RELAXED), msg_marker << 32 | 8);
    header.store(msg_marker << 32 | u32::MAX as u64, RELAXED);
    let items: Vec<_> = rx.iter().collect(); // would wait forever if it went on
    assert!(
        matches!(items[..], [Err(RecvError::Corrupted(_))]),
        "{items:?}"
    );
    assert!(!rx.is_empty());

    // MPMC: slot 0's length word past the largest message.
    let endpoint = Channel::bytes().mpmc().max_message(64).anonymous().unwrap();
    let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    tx.send(&[1; 8]).unwrap();
    tx.send(&[2; 8]).unwrap();
    shared_word(endpoint.region(), crate::mpmc::CONTROL_SIZE + 8).store(u64::MAX, RELAXED);
    let items: Vec<_> = rx.try_iter().collect();
    assert!(
        matches!(items[..], [Err(RecvError::Corrupted(_))]),
        "{items:?}"
    );
    // The queue steps over the bad slot; a new iteration finds the next.
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [Ok(vec![2; 8])]);
}

#[test]
fn len_is_empty_and_is_full_on_an_mpmc_queue() {
    let endpoint = Channel::bytes()
        .mpmc()
        .capacity(4)
        .max_message(8)
        .anonymous()
        .unwrap();
    let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    assert_eq!((tx.len(), rx.len()), (Some(0), Some(0)));
    assert!(tx.is_empty() && rx.is_empty());
    assert_eq!((tx.is_full(), rx.is_full()), (Some(false), Some(false)));
    for n in 1..=4 {
        tx.try_send(&[n]).unwrap();
        assert_eq!((tx.len(), rx.len()), (Some(n as usize), Some(n as usize)));
    }
    assert_eq!(tx.try_send(b"x"), Err(SendFailure::Full));
    assert_eq!((tx.is_full(), rx.is_full()), (Some(true), Some(true)));
    assert!(!tx.is_empty() && !rx.is_empty());
    drop(rx.recv().unwrap());
    assert_eq!((tx.len(), tx.is_full()), (Some(3), Some(false)));
    assert_eq!(rx.try_iter().count(), 3);
    assert!(tx.is_empty() && rx.is_empty());
    assert_eq!(tx.bytes_used(), None);
}

#[test]
fn an_spsc_ring_answers_is_empty_and_bytes_used_but_no_count() {
    let endpoint = Channel::bytes()
        .spsc()
        .capacity(4)
        .max_message(64)
        .anonymous()
        .unwrap();
    let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    assert_eq!(
        (tx.len(), rx.len(), tx.is_full(), rx.is_full()),
        (None, None, None, None)
    );
    assert!(tx.is_empty() && rx.is_empty());
    assert_eq!(tx.bytes_used(), Some(0));
    tx.send(&[1; 5]).unwrap();
    assert!(!tx.is_empty() && !rx.is_empty());
    let one = tx.bytes_used().unwrap();
    assert!(one >= 5, "{one}");
    tx.send(&[2; 5]).unwrap();
    assert_eq!(tx.bytes_used(), Some(2 * one));
    let capacity = endpoint.region().layout().capacity as usize;
    let mut sent = 2;
    while tx.try_send(&[3; 64]).is_ok() {
        sent += 1;
    }
    assert!(sent >= 4, "{sent}");
    assert!(tx.bytes_used().unwrap() <= capacity);
    assert_eq!(rx.try_iter().count(), sent);
    assert!(tx.is_empty() && rx.is_empty());
    assert_eq!(tx.bytes_used(), Some(0));
}

#[test]
fn occupancy_read_from_corrupted_positions_is_clamped() {
    // MPMC: tail far ahead of head, then head ahead of tail.
    let endpoint = Channel::bytes()
        .mpmc()
        .capacity(4)
        .max_message(8)
        .anonymous()
        .unwrap();
    let (tx, rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    let region = endpoint.region();
    let head = crate::layout::mpmc::control::HEAD as u64;
    shared_word(region, 0).store(u64::MAX, RELAXED);
    assert_eq!((tx.len(), rx.is_full()), (Some(4), Some(true)));
    shared_word(region, 0).store(0, RELAXED);
    shared_word(region, head).store(u64::MAX, RELAXED);
    assert_eq!((tx.len(), rx.len()), (Some(0), Some(0)));
    assert!(rx.is_empty());

    // SPSC: the consumer's head far from the producer's end.
    let endpoint = Channel::bytes().spsc().max_message(64).anonymous().unwrap();
    let mut tx = endpoint.sender().unwrap();
    tx.send(&[1; 8]).unwrap();
    let head = shared_word(endpoint.region(), crate::layout::spsc::control::HEAD as u64);
    head.store(u64::MAX, RELAXED);
    assert_eq!(tx.bytes_used(), Some(0));
    head.store(0, RELAXED);
    assert!(tx.bytes_used().unwrap() <= endpoint.region().layout().capacity as usize);
}

#[test]
fn is_disconnected_on_both_ends_of_both_rings() {
    for builder in kinds() {
        let endpoint = builder.anonymous().unwrap();
        let (mut tx, rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        assert!(!tx.is_disconnected() && !rx.is_disconnected());
        tx.send(order(1)).unwrap();
        drop(tx);
        let mut rx = rx;
        // Gone, though a message remains to be received.
        assert!(rx.is_disconnected());
        assert_eq!(rx.recv(), Ok(order(1)));
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));

        let endpoint = kinds()[matches!(endpoint.kind(), RingKind::Mpmc) as usize]
            .anonymous()
            .unwrap();
        let (tx, rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
        drop(rx);
        assert!(tx.is_disconnected());
    }
    // Not before any peer attached: nobody has left.
    let endpoint = Channel::bytes().mpmc().anonymous().unwrap();
    assert!(!endpoint.sender().unwrap().is_disconnected());
}

#[test]
fn try_clone_attaches_another_mpmc_end_and_refuses_a_second_spsc_one() {
    let endpoint = Channel::serde::<Order>()
        .mpmc()
        .capacity(16)
        .max_message(256)
        .participants(4)
        .wait_strategy(WaitStrategy::BusyPoll)
        .anonymous()
        .unwrap();
    let (tx, rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    let mut tx2 = tx.try_clone().unwrap();
    let mut rx2 = rx.try_clone().unwrap();
    // The table (4 slots) is full: a third clone is refused, nothing leaks.
    assert!(matches!(
        tx.try_clone(),
        Err(Error::TooManyParticipants { slots: 4 })
    ));
    drop(tx);
    drop(rx);
    // The clones are ends of their own: the channel stays connected.
    assert!(!tx2.is_disconnected() && !rx2.is_disconnected());
    let producer = std::thread::spawn(move || {
        for id in 0..50 {
            tx2.send(order(id)).unwrap();
        }
    });
    let got: Vec<Order> = rx2.iter().map(Result::unwrap).collect();
    assert_eq!(got, (0..50).map(order).collect::<Vec<_>>());
    producer.join().unwrap();

    let endpoint = Channel::bytes().spsc().anonymous().unwrap();
    let (tx, rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
    let pid = std::process::id();
    assert!(matches!(
        tx.try_clone(),
        Err(Error::AlreadyAttached { role: "producer", pid: p }) if p == pid
    ));
    assert!(matches!(
        rx.try_clone(),
        Err(Error::AlreadyAttached { role: "consumer", pid: p }) if p == pid
    ));
}

#[cfg(feature = "tokio")]
mod asynchronous {
    use std::sync::mpsc;

    use super::*;

    /// Runs `test` on a fresh runtime in a thread of its own, failing after
    /// `limit` rather than hanging (a blocked runtime cannot time itself
    /// out).
    fn within<F>(limit: Duration, runtime: tokio::runtime::Runtime, test: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (done, finished) = mpsc::channel();
        let runner = std::thread::spawn(move || {
            runtime.block_on(test);
            let _ = done.send(());
        });
        match finished.recv_timeout(limit) {
            Ok(()) => runner.join().unwrap(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::panic::resume_unwind(runner.join().unwrap_err())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the async test hung"),
        }
    }

    fn one_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_waiting_receive_leaves_the_only_runtime_thread_free() {
        for builder in kinds() {
            // One runtime thread runs both tasks: if the waiting receive
            // held it, the sender's task could never run.
            within(Duration::from_secs(60), one_thread(), async move {
                let endpoint = builder.anonymous().unwrap();
                let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
                let sender = tokio::spawn(async move {
                    for id in 0..200 {
                        if id % 50 == 0 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        tx.send_async(order(id)).await.unwrap();
                    }
                });
                for id in 0..200 {
                    assert_eq!(rx.recv_async().await.unwrap(), order(id));
                }
                sender.await.unwrap();
                assert_eq!(rx.recv_async().await, Err(RecvError::Disconnected));
            });
        }
    }

    #[test]
    fn a_waiting_send_leaves_the_only_runtime_thread_free() {
        for builder in kinds() {
            within(Duration::from_secs(60), one_thread(), async move {
                let endpoint = builder.capacity(2).anonymous().unwrap();
                let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
                let receiver = tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let mut got = Vec::new();
                    while let Ok(value) = rx.recv_async().await {
                        got.push(value.id);
                    }
                    got
                });
                // Far more than the channel holds: the sender waits for room.
                for id in 0..100 {
                    tx.send_async(order(id)).await.unwrap();
                }
                drop(tx);
                assert_eq!(receiver.await.unwrap(), (0..100).collect::<Vec<_>>());
            });
        }
    }

    #[test]
    fn a_cancelled_receive_loses_nothing() {
        within(Duration::from_secs(60), one_thread(), async {
            let endpoint = Channel::serde::<Order>().anonymous().unwrap();
            let (mut tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
            let waited = tokio::time::timeout(Duration::from_millis(10), rx.recv_async()).await;
            assert!(waited.is_err(), "nothing was sent");
            tx.send(order(1)).unwrap();
            assert_eq!(rx.recv_async().await.unwrap(), order(1));
        });
    }

    #[test]
    fn a_receiver_waiting_when_the_sender_drops_is_told() {
        for builder in kinds() {
            within(Duration::from_secs(60), one_thread(), async move {
                let endpoint = builder.anonymous().unwrap();
                let (tx, mut rx) = (endpoint.sender().unwrap(), endpoint.receiver().unwrap());
                let dropper = tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    drop(tx);
                });
                assert_eq!(rx.recv_async().await, Err(RecvError::Disconnected));
                dropper.await.unwrap();
            });
        }
    }

    #[test]
    fn bytes_and_pod_handles_have_async_calls_too() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        within(Duration::from_secs(60), runtime, async {
            let bytes = Channel::bytes().max_message(64).mpmc().anonymous().unwrap();
            let (mut tx, mut rx) = (bytes.sender().unwrap(), bytes.receiver().unwrap());
            let sender = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                tx.send_async(b"first").await.unwrap();
                tx.send_async(b"second").await.unwrap();
            });
            assert_eq!(&*rx.recv_async().await.unwrap(), b"first");
            let mut buf = [0; 64];
            let len = rx.recv_into_async(&mut buf).await.unwrap();
            assert_eq!(&buf[..len], b"second");
            sender.await.unwrap();

            let pod = Channel::pod::<Tick>().anonymous().unwrap();
            let (mut tx, mut rx) = (pod.sender().unwrap(), pod.receiver().unwrap());
            let tick = Tick {
                price: 2.5,
                volume: 9,
                venue: 1,
                flags: 0,
            };
            let sender = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                tx.send_async(tick).await.unwrap();
                tx.send_async(tick).await.unwrap();
            });
            assert_eq!(*rx.recv_ref_async().await.unwrap(), tick);
            assert_eq!(rx.recv_async().await.unwrap(), tick);
            sender.await.unwrap();
        });
    }
}
