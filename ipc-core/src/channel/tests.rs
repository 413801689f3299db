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
