//! The floor under any encrypted TCP tunnel's cost: a relay that does nothing but read, seal
//! or open with ChaCha20-Poly1305 (ring, as PORT uses), and write. No handshake, no padding, no
//! keepalive, no framing beyond a length, no async runtime: two blocking threads per connection
//! and one AEAD record per socket read, sealed in place.
//!
//! `tunnel/bench/iperf.sh floor` puts a pair of these where the `port-tunnel` pair would be,
//! so that the same run shows how close the tunnel gets to the cheapest relay that still seals
//! and opens every byte once over the same three loopback hops.
//!
//! **This is a measuring instrument, not a secure channel**: the key is a constant and nothing
//! is authenticated beyond each record.
//!
//! ```text
//! cargo run --release -p port-tunnel --example sealed_relay -- seal LISTEN TARGET   # plain in, sealed out
//! cargo run --release -p port-tunnel --example sealed_relay -- open LISTEN TARGET   # sealed in, plain out
//! ```
//!
//! Each prints `listening on ADDR` once bound. Bytes from accepted connections go to TARGET
//! sealed (`seal`) or opened (`open`); bytes coming back take the other operation.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

/// Largest plaintext read at a time, as `port-tunnel` reads.
const READ: usize = 128 * 1024;
const TAG: usize = 16;
const HEADER: usize = 4;

/// Which way a byte stream flows, so the two directions never share a nonce.
#[derive(Clone, Copy)]
enum Flow {
    Up = 0,
    Down = 1,
}

struct Keyed {
    key: LessSafeKey,
    flow: Flow,
    counter: u64,
}

impl Keyed {
    fn new(flow: Flow) -> Keyed {
        let key = UnboundKey::new(&CHACHA20_POLY1305, &[7; 32]).expect("32-byte key");
        Keyed {
            key: LessSafeKey::new(key),
            flow,
            counter: 0,
        }
    }

    fn nonce(&mut self) -> Nonce {
        let mut bytes = [0; 12];
        bytes[0] = self.flow as u8;
        bytes[4..].copy_from_slice(&self.counter.to_be_bytes());
        self.counter += 1;
        Nonce::assume_unique_for_key(bytes)
    }
}

/// Plain in, records out: each read becomes one record, sealed where it was read.
fn seal(mut from: TcpStream, mut to: TcpStream, mut keyed: Keyed) -> io::Result<()> {
    let mut record = vec![0; HEADER + READ + TAG];
    loop {
        let n = from.read(&mut record[HEADER..HEADER + READ])?;
        if n == 0 {
            return to.shutdown(Shutdown::Write);
        }
        record[..HEADER].copy_from_slice(&(n as u32).to_be_bytes());
        let nonce = keyed.nonce();
        let tag = keyed
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut record[HEADER..HEADER + n])
            .map_err(|_| io::Error::other("seal failed"))?;
        record[HEADER + n..HEADER + n + TAG].copy_from_slice(tag.as_ref());
        to.write_all(&record[..HEADER + n + TAG])?;
    }
}

/// Records in, plain out: each record is read whole, opened where it was read and written.
fn open(mut from: TcpStream, mut to: TcpStream, mut keyed: Keyed) -> io::Result<()> {
    let mut record = vec![0; READ + TAG];
    loop {
        let mut header = [0; HEADER];
        match from.read_exact(&mut header) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return to.shutdown(Shutdown::Write);
            }
            other => other?,
        }
        let n = u32::from_be_bytes(header) as usize;
        if n > READ {
            return Err(io::Error::other("record too long"));
        }
        let body = &mut record[..n + TAG];
        from.read_exact(body)?;
        let nonce = keyed.nonce();
        let plain = keyed
            .key
            .open_in_place(nonce, Aad::empty(), body)
            .map_err(|_| io::Error::other("record failed authentication"))?;
        to.write_all(plain)?;
    }
}

type Pump = fn(TcpStream, TcpStream, Keyed) -> io::Result<()>;

fn carry(accepted: TcpStream, target: &str, sealing: bool) -> io::Result<()> {
    let onward = TcpStream::connect(target)?;
    accepted.set_nodelay(true)?;
    onward.set_nodelay(true)?;
    let (up, down): (Pump, Pump) = if sealing { (seal, open) } else { (open, seal) };
    let (a, b) = (accepted.try_clone()?, onward.try_clone()?);
    thread::spawn(move || up(a, b, Keyed::new(Flow::Up)));
    thread::spawn(move || down(onward, accepted, Keyed::new(Flow::Down)));
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, listen, target] = args.as_slice() else {
        eprintln!("usage: sealed_relay seal|open LISTEN TARGET");
        std::process::exit(2);
    };
    let sealing = match mode.as_str() {
        "seal" => true,
        "open" => false,
        _ => {
            eprintln!("the mode must be seal or open, not {mode:?}");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(listen)?;
    println!("listening on {}", listener.local_addr()?);
    for accepted in listener.incoming() {
        if let Err(e) = accepted.and_then(|s| carry(s, target, sealing)) {
            eprintln!("sealed_relay: {e}");
        }
    }
    Ok(())
}
