//! A stream of typed requests from a client process to a server process.
//!
//! ```text
//! cargo run -p ipc-examples --example typed_requests
//! ```
//!
//! The server creates a named channel of `Request`s (a POSIX shm object,
//! mode 0600) and starts the client: a second copy of this program, which
//! shares no memory with it and opens the channel by its name. Requests are
//! any `serde` type; the channel encodes each with bincode 2 straight into
//! shared memory, and the server gets `Request` values back.
//!
//! Opening checks that both sides mean the same messages: a client built
//! with another `Request` type (or the same one as plain old data) gets
//! `Error::TypeMismatch`, naming both types, instead of garbage. When the
//! client exits, the server receives whatever is left and then
//! `Disconnected`, even if the client was killed.

use std::collections::HashMap;
use std::error::Error;
use std::process::Command;
use std::time::Duration;

use ipc_core::channel::{Builder, Channel, RecvError, Serde};
use serde::{Deserialize, Serialize};

/// What the client asks of the server's key-value store.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Put { key: String, value: Vec<u8> },
    Get { key: String },
    Delete { key: String },
}

const REQUESTS: u64 = 30_000;
/// How long either side waits for the other before giving up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Both sides describe the channel the same way; the creator's capacity and
/// sizes are the ones that count.
fn requests() -> Builder<Request, Serde> {
    // Room for 1024 requests of up to 256 bytes each, encoded.
    Channel::serde::<Request>().capacity(1024).max_message(256)
}

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::args().nth(1) {
        Some(name) => client(&name),
        None => server(),
    }
}

/// The first process: creates the channel, starts the client, and serves
/// requests until the client is gone.
fn server() -> Result<(), Box<dyn Error>> {
    let name = format!("/ipc-example-requests-{}", std::process::id());
    // The name is removed when `channel` (and every handle from it) drops.
    let channel = requests().create(&name)?;
    let mut rx = channel.receiver()?;
    let mut client = Command::new(std::env::current_exe()?).arg(&name).spawn()?;

    let mut store: HashMap<String, Vec<u8>> = HashMap::new();
    let (mut puts, mut gets, mut hits, mut deletes) = (0, 0, 0, 0);
    loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(Request::Put { key, value }) => {
                puts += 1;
                store.insert(key, value);
            }
            Ok(Request::Get { key }) => {
                gets += 1;
                hits += u64::from(store.contains_key(&key));
            }
            Ok(Request::Delete { key }) => {
                deletes += 1;
                store.remove(&key);
            }
            // Every request the client sent has been served.
            Err(RecvError::Disconnected) => break,
            // Bytes that are not a `Request` (from a raw byte sender) would
            // give `RecvError::Decode` and the channel would go on; here any
            // error ends the example.
            Err(e) => return Err(e.into()),
        }
    }
    let status = client.wait()?;
    if !status.success() {
        return Err(format!("the client failed: {status}").into());
    }
    if puts + gets + deletes != REQUESTS {
        return Err(format!("served {} of {REQUESTS} requests", puts + gets + deletes).into());
    }
    println!(
        "served {REQUESTS} requests from process {}: {puts} puts, {gets} gets ({hits} found), \
         {deletes} deletes; {} keys stored",
        client.id(),
        store.len()
    );
    Ok(())
}

/// The second process: opens the channel by name and sends requests.
fn client(name: &str) -> Result<(), Box<dyn Error>> {
    let mut tx = requests().open(name)?.sender()?;
    for i in 0..REQUESTS {
        let key = format!("key-{}", i % 100);
        let request = match i % 3 {
            0 => Request::Put {
                key,
                value: i.to_le_bytes().to_vec(),
            },
            1 => Request::Get { key },
            _ => Request::Delete { key },
        };
        // Waits while the channel is full. A request that is not sent comes
        // back in the error (`SendError::value`), with the reason.
        tx.send_timeout(request, TIMEOUT)?;
    }
    Ok(())
}
