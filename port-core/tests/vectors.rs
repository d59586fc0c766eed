//! The test vectors of `docs/PROTOCOL.md`.
//!
//! 1. The vectors are regenerated through the public API (fixed seeds, a fixed clock, the drive
//!    loop of the crate documentation) and compared with the fenced blocks of the document.
//! 2. A reference decoder, written from the document alone with the `blake3`, `x25519-dalek`,
//!    `chacha20poly1305` and `aes-gcm` crates (RustCrypto's, where port-core seals with ring)
//!    and its own ChaCha20 random generator, opens the vectors written in the document, checks
//!    every field, and recomputes every intermediate value the document lists.
//!
//! After a deliberate change of the wire format, refresh the document with
//! `PORT_REGENERATE_VECTORS=1 cargo test -p port-core --test vectors -- --nocapture`, and replace
//! the text between the `vectors:begin` and `vectors:end` markers with what it prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use aes_gcm::Aes256Gcm;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use port_core::Session;
use port_core::{Cipher, ClientConfig, Config, Connection, Event, ServerConfig, ServerKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");
const BEGIN: &str = "<!-- vectors:begin -->";
const END: &str = "<!-- vectors:end -->";
const REGENERATE: &str = "PORT_REGENERATE_VECTORS";

// ----- the parameters of the vectors ---------------------------------------------------------

const KEY_RNG_SEED: [u8; 32] = [0x11; 32];
const CLIENT_SEED: [u8; 32] = [0xc1; 32];
const SERVER_SEED: [u8; 32] = [0x5e; 32];
const UNIX_SECS: u64 = 1_800_000_000;
const TOKEN: &[u8] = b"PORT/1 test vector token";
const CLIENT_TYPE: u8 = 0x2a;
const USER_ID: u32 = 0x0102_0304;
const TAIL_LENGTH: u16 = 16;
const CLIENT_MESSAGE: &[u8] = b"hello, server";
/// The shape of the shaped vectors (§18).
const SHAPE: &str = "prefix=@tls&popcount=low&lengths=shaped";
const SERVER_REPLY: &[u8] = b"hello, client";

fn vector_config() -> Config {
    Config::builder()
        .tail_length(TAIL_LENGTH)
        .build()
        .expect("valid vector config")
}

fn parameters_text() -> String {
    let quoted = |b: &[u8]| format!("\"{}\"", String::from_utf8_lossy(b));
    [
        format!("key-rng-seed           = {}", hex(&KEY_RNG_SEED)),
        format!("client-connection-seed = {}", hex(&CLIENT_SEED)),
        format!("server-connection-seed = {}", hex(&SERVER_SEED)),
        format!("unix-time              = {UNIX_SECS}"),
        format!("token                  = {}", quoted(TOKEN)),
        format!("client-type            = 0x{CLIENT_TYPE:02x}"),
        format!("user-id                = 0x{USER_ID:08x}"),
        format!("config                 = defaults, PORT_TAIL_LENGTH = {TAIL_LENGTH}"),
        format!("client-message         = {}", quoted(CLIENT_MESSAGE)),
        format!("server-reply           = {}", quoted(SERVER_REPLY)),
        format!("shape                  = {SHAPE} (shaped vectors only)"),
    ]
    .join("\n")
}

// ----- the blocks of the document ------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Text,
    Hex,
}

/// Where a block's expected value comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    /// The vector parameters (the constants above).
    Parameters,
    /// The public API of port-core.
    Code,
    /// Recomputed by the reference decoder.
    Reference,
}

/// One block of the vectors region.
#[derive(Clone, Copy)]
struct Spec {
    name: &'static str,
    kind: Kind,
    source: Source,
    caption: &'static str,
}

/// The vectors region of the document, in order: `#` lines are sub-headings; every other line is
/// one block: kind (`text` or `hex`), name, source (`P` parameters, `C` the code's public API,
/// `R` the reference decoder) and caption.
const LAYOUT: &str = "\
# Parameters
text parameters              P what the vectors are generated from
# Keys
text server-key              C `ServerKey::generate` from `ChaCha20Rng::from_seed(key-rng-seed)`, text form
text client-key              C the matching client key, text form
hex  server-secret           R X25519 static secret `s` (first 32 bytes drawn), as stored (unclamped)
hex  seed                    R obfuscation seed (next 32 bytes drawn)
hex  server-public           R `S = X25519(s, 9)`
# Client INIT
hex  client-salt             R client draw 2: salt (16 bytes); draw 1 was the padding word
hex  client-ephemeral-secret R client draw 3: ephemeral secret `e` (32 bytes)
hex  client-ephemeral-public R `E = X25519(e, 9)`
hex  client-mask             R `BLAKE3-keyed(seed, \"PORT/1 client mask\" ‖ salt)`
hex  es                      R `X25519(e, S)`
hex  init-key                R `DeriveKey(\"PORT/1 2026-11 client INIT key\", seed ‖ S ‖ salt ‖ E ‖ es, 32)`
hex  client-init-header      R header plaintext (24 bytes)
hex  client-init             C the client INIT on the wire
hex  transcript-hash         R `th = BLAKE3(client INIT)`
# Server INIT
hex  server-ephemeral-secret R server draw 2: ephemeral secret `f` (32 bytes); draw 1 was the drain deadline
hex  server-ephemeral-public R `F = X25519(f, 9)`
hex  server-mask             R `BLAKE3-keyed(seed, \"PORT/1 server mask\" ‖ th)`
hex  ee                      R `X25519(f, E) = X25519(e, F)`
hex  server-init-key         R `K_sinit`: session key output bytes 0..32
hex  client-to-server-key    R `K_c2s`: session key output bytes 32..64
hex  server-to-client-key    R `K_s2c`: session key output bytes 64..96
hex  server-init-header      R header plaintext (20 bytes)
hex  server-init             C the server INIT on the wire
# Frames
hex  client-data-header      R client→server frame 0 header plaintext (DATA)
hex  client-data             C client→server frame 0 on the wire (counters 0 and 1)
hex  server-data-header      R server→client frame 0 header plaintext (DATA)
hex  server-data             C server→client frame 0 on the wire (counters 0 and 1)
hex  client-term-header      R client→server frame 1 header plaintext (TERM)
hex  client-term             C client→server frame 1 on the wire (counters 2 and 3)
hex  server-term-header      R server→client frame 1 header plaintext (TERM)
hex  server-term             C server→client frame 1 on the wire (counters 2 and 3)
# Shapes (§18)
text shaped-client-key       C the client key of the same server with the shape, text form
hex  alphabet-low            R the low popcount alphabet of `seed`, symbols by rank (§18.2)
hex  alphabet-high           R the high popcount alphabet of `seed`, symbols by rank
hex  shaped-client-init      C the same client INIT under the shape: the TLS prefix ‖ the INIT encoded with `alphabet-low`
text record-sizes            R the client's record-size distribution (its draws after the INIT's) and its first record's size (§18.3)
hex  shaped-client-data      C client→server record 0 under the shape: frame 0 (DATA) padded to the first record's size
# AES-256-GCM (§20)
text aes-client-key          C the client key of the same server with `cipher=aes-256-gcm`, text form
hex  aes-init-key            R `DeriveKey(\"PORT/1 2026-12 AES-256-GCM client INIT key\", seed ‖ S ‖ salt ‖ E ‖ es, 32)`
hex  aes-client-init         C the client INIT under AES-256-GCM: the same draws, salt and length
hex  aes-server-init-key     R `K_sinit`: bytes 0..32 of `DeriveKey(\"PORT/1 2026-12 AES-256-GCM session keys\", …, 96)`
hex  aes-client-to-server-key R `K_c2s`: session key output bytes 32..64
hex  aes-server-to-client-key R `K_s2c`: session key output bytes 64..96
hex  aes-server-init         C the server INIT under AES-256-GCM
hex  aes-client-data         C client→server frame 0 (DATA)
hex  aes-server-data         C server→client frame 0 (DATA)
hex  aes-client-term         C client→server frame 1 (TERM)
hex  aes-server-term         C server→client frame 1 (TERM)
";

/// A line of [`LAYOUT`].
enum Item {
    Heading(&'static str),
    Block(Spec),
}

fn layout() -> impl Iterator<Item = Item> {
    LAYOUT.lines().map(|line| {
        if let Some(heading) = line.strip_prefix("# ") {
            return Item::Heading(heading);
        }
        let field = |rest: &'static str| {
            rest.trim_start()
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad layout line {line:?}"))
        };
        let (kind, rest) = field(line);
        let (name, rest) = field(rest);
        let (source, caption) = field(rest);
        Item::Block(Spec {
            name,
            kind: match kind {
                "text" => Kind::Text,
                "hex" => Kind::Hex,
                other => panic!("bad kind {other:?}"),
            },
            source: match source {
                "P" => Source::Parameters,
                "C" => Source::Code,
                "R" => Source::Reference,
                other => panic!("bad source {other:?}"),
            },
            caption,
        })
    })
}

fn specs() -> impl Iterator<Item = Spec> {
    layout().filter_map(|item| match item {
        Item::Block(spec) => Some(spec),
        Item::Heading(_) => None,
    })
}

fn spec_of(name: &str) -> Spec {
    specs()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no block named `{name}`"))
}

/// A block's content: text, or bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Value {
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    fn bytes(&self) -> &[u8] {
        match self {
            Value::Bytes(b) => b,
            Value::Text(t) => panic!("expected bytes, found text {t:?}"),
        }
    }

    fn text(&self) -> &str {
        match self {
            Value::Text(t) => t,
            Value::Bytes(b) => panic!("expected text, found bytes {}", hex(b)),
        }
    }

    fn render(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Bytes(b) => hex(b)
                .as_bytes()
                .chunks(64)
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

type Values = BTreeMap<&'static str, Value>;

/// The region between the markers, as the document must hold it.
fn render_region(values: &Values) -> String {
    let mut out = String::from("\n");
    for item in layout() {
        let spec = match item {
            Item::Heading(heading) => {
                let _ = write!(out, "\n#### {heading}\n");
                continue;
            }
            Item::Block(spec) => spec,
        };
        let value = values
            .get(spec.name)
            .unwrap_or_else(|| panic!("no value for `{}`", spec.name));
        let kind = match spec.kind {
            Kind::Text => "text",
            Kind::Hex => "hex",
        };
        let _ = write!(
            out,
            "\n`{}`: {}\n\n```{kind} {}\n{}\n```\n",
            spec.name,
            spec.caption,
            spec.name,
            value.render()
        );
    }
    out.push('\n');
    out
}

/// The region between the markers in the document.
fn doc_region() -> &'static str {
    let start = DOC
        .find(BEGIN)
        .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no `{BEGIN}` marker"));
    let end = DOC
        .find(END)
        .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no `{END}` marker"));
    assert!(start < end, "markers out of order in docs/PROTOCOL.md");
    &DOC[start + BEGIN.len()..end]
}

/// Parses the fenced blocks named ```` ```hex name ```` or ```` ```text name ```` of the document
/// (anywhere in it). Unnamed fences (layout drawings and examples) are skipped.
fn doc_blocks() -> Values {
    let mut blocks = Values::new();
    let mut lines = DOC.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.trim_end().strip_prefix("```") else {
            continue;
        };
        let words: Vec<&str> = info.split_whitespace().collect();
        let mut body = Vec::new();
        for (_, line) in lines.by_ref() {
            if line.trim_end() == "```" {
                break;
            }
            body.push(line.trim_end());
        }
        let [kind, name] = words[..] else {
            continue;
        };
        let kind = match kind {
            "hex" => Kind::Hex,
            "text" => Kind::Text,
            _ => continue,
        };
        let spec = specs().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "docs/PROTOCOL.md line {}: block `{name}` is not a known vector",
                number + 1
            )
        });
        assert_eq!(
            spec.kind,
            kind,
            "docs/PROTOCOL.md line {}: block `{name}` has the wrong kind",
            number + 1
        );
        let value = match kind {
            Kind::Text => Value::Text(body.join("\n")),
            Kind::Hex => {
                let digits: String = body.concat().split_whitespace().collect();
                Value::Bytes(unhex(&digits).unwrap_or_else(|e| {
                    panic!("docs/PROTOCOL.md block `{name}` is not valid hex: {e}")
                }))
            }
        };
        assert!(
            blocks.insert(spec.name, value).is_none(),
            "docs/PROTOCOL.md has two blocks named `{name}`"
        );
    }
    for spec in specs() {
        assert!(
            blocks.contains_key(spec.name),
            "docs/PROTOCOL.md lacks the vector block `{}` ({} {})",
            spec.name,
            match spec.kind {
                Kind::Hex => "```hex",
                Kind::Text => "```text",
            },
            spec.name
        );
    }
    blocks
}

fn regenerating() -> bool {
    std::env::var(REGENERATE).is_ok_and(|v| v == "1")
}

// ----- generation through the public API -----------------------------------------------------

/// Everything the code produces for the vectors.
struct Generated {
    server_key: String,
    client_key: String,
    wire: Wire,
    shaped_client_key: String,
    shaped: Wire,
    aes_client_key: String,
    aes: Wire,
}

/// The six messages of the exchange, as bytes on the wire.
#[derive(Clone)]
struct Wire {
    client_init: Vec<u8>,
    server_init: Vec<u8>,
    client_data: Vec<u8>,
    server_data: Vec<u8>,
    client_term: Vec<u8>,
    server_term: Vec<u8>,
}

/// The names of the wire blocks: plain, and under AES-256-GCM.
const WIRE_BLOCKS: [(&str, &str); 6] = [
    ("client-init", "aes-client-init"),
    ("server-init", "aes-server-init"),
    ("client-data", "aes-client-data"),
    ("server-data", "aes-server-data"),
    ("client-term", "aes-client-term"),
    ("server-term", "aes-server-term"),
];

/// The exchange with the vectors' server key, then with the same key under [`SHAPE`], then
/// with the same key under AES-256-GCM.
fn generate() -> Generated {
    let server_key = ServerKey::generate(&mut ChaCha20Rng::from_seed(KEY_RNG_SEED));
    let shaped_key = server_key
        .clone()
        .with_shape(port_core::Shape::from_params(SHAPE).expect("the vectors' shape"));
    let aes_key = server_key.clone().with_cipher(Cipher::Aes256Gcm);
    Generated {
        server_key: server_key.to_text(),
        client_key: server_key.client_key().to_text(),
        wire: exchange(&server_key),
        shaped_client_key: shaped_key.client_key().to_text(),
        shaped: exchange(&shaped_key),
        aes_client_key: aes_key.client_key().to_text(),
        aes: exchange(&aes_key),
    }
}

/// Runs the exchange: handshake, one message each way, graceful close by the client. Driven as
/// in the crate documentation (transmits, then events, then timers); every transmit is recorded.
fn exchange(server_key: &ServerKey) -> Wire {
    let config = vector_config();
    let client_setup = ClientConfig::new(config.clone(), server_key.client_key(), TOKEN)
        .expect("client setup")
        .with_client_type(CLIENT_TYPE);
    let server_setup = ServerConfig::new(config, server_key.clone());

    let start = Instant::now();
    let unix = Duration::from_secs(UNIX_SECS);
    let mut client = Connection::client(&client_setup, start, unix, CLIENT_SEED);
    let mut server = Connection::server(&server_setup, start, unix, SERVER_SEED);

    let mut now = start;
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    let (mut client_log, mut server_log) = (Vec::new(), Vec::new());
    for _step in 0..100 {
        while let Some(bytes) = client.poll_transmit(now) {
            c2s.push(bytes.to_vec());
            server.handle_input(now, &bytes);
        }
        while let Some(bytes) = server.poll_transmit(now) {
            s2c.push(bytes.to_vec());
            client.handle_input(now, &bytes);
        }
        let mut progressed = false;
        while let Some(event) = server.poll_event() {
            progressed = true;
            match &event {
                Event::Authenticate { token, client_type } => {
                    assert_eq!(&token[..], TOKEN);
                    assert_eq!(*client_type, CLIENT_TYPE);
                    server.accept(USER_ID).expect("accept");
                }
                Event::Data(message) => {
                    assert_eq!(&message[..], CLIENT_MESSAGE);
                    server.send(SERVER_REPLY.into()).expect("server send");
                }
                Event::Finished => server.close(),
                _ => {}
            }
            server_log.push(event);
        }
        while let Some(event) = client.poll_event() {
            progressed = true;
            match &event {
                Event::Connected { user_id } => {
                    assert_eq!(*user_id, USER_ID);
                    client.send(CLIENT_MESSAGE.into()).expect("client send");
                }
                Event::Data(message) => {
                    assert_eq!(&message[..], SERVER_REPLY);
                    client.close();
                }
                _ => {}
            }
            client_log.push(event);
        }
        if client.is_closed() && server.is_closed() {
            break;
        }
        if !progressed {
            now = client
                .poll_timeout()
                .into_iter()
                .chain(server.poll_timeout())
                .min()
                .expect("a deadline");
            client.handle_timeout(now);
            server.handle_timeout(now);
        }
    }
    assert!(
        client.is_closed() && server.is_closed(),
        "exchange did not end"
    );
    assert_eq!(now, start, "the vector exchange needs no timer");
    assert!(
        matches!(
            &client_log[..],
            [
                Event::Connected { .. },
                Event::Data(_),
                Event::Finished,
                Event::Closed(port_core::CloseReason::Local)
            ]
        ),
        "client events: {client_log:?}"
    );
    assert!(
        matches!(
            &server_log[..],
            [
                Event::Authenticate { .. },
                Event::Connected { .. },
                Event::Data(_),
                Event::Finished,
                Event::Closed(port_core::CloseReason::Peer)
            ]
        ),
        "server events: {server_log:?}"
    );
    let [client_init, client_data, client_term] = <[Vec<u8>; 3]>::try_from(c2s)
        .unwrap_or_else(|c2s| panic!("expected 3 client transmits, got {}", c2s.len()));
    let [server_init, server_data, server_term] = <[Vec<u8>; 3]>::try_from(s2c)
        .unwrap_or_else(|s2c| panic!("expected 3 server transmits, got {}", s2c.len()));
    Wire {
        client_init,
        server_init,
        client_data,
        server_data,
        client_term,
        server_term,
    }
}

impl Generated {
    fn values(&self) -> Values {
        let w = &self.wire;
        let mut values = Values::new();
        values.insert("parameters", Value::Text(parameters_text()));
        values.insert("server-key", Value::Text(self.server_key.clone()));
        values.insert("client-key", Value::Text(self.client_key.clone()));
        values.insert(
            "shaped-client-key",
            Value::Text(self.shaped_client_key.clone()),
        );
        values.insert(
            "shaped-client-init",
            Value::Bytes(self.shaped.client_init.clone()),
        );
        values.insert(
            "shaped-client-data",
            Value::Bytes(self.shaped.client_data.clone()),
        );
        values.insert("aes-client-key", Value::Text(self.aes_client_key.clone()));
        for (wire, aes) in [(w, false), (&self.aes, true)] {
            for (name, bytes) in WIRE_BLOCKS.iter().zip(wire.blocks()) {
                let name = if aes { name.1 } else { name.0 };
                values.insert(name, Value::Bytes(bytes.clone()));
            }
        }
        values
    }
}

impl Wire {
    /// The six messages in the order of [`WIRE_BLOCKS`].
    fn blocks(&self) -> [&Vec<u8>; 6] {
        [
            &self.client_init,
            &self.server_init,
            &self.client_data,
            &self.server_data,
            &self.client_term,
            &self.server_term,
        ]
    }
}

/// The plain wire blocks of `values`, or (`aes`) those under AES-256-GCM.
fn wire_from(values: &Values, aes: bool) -> Wire {
    let get = |i: usize| {
        let (plain, under_aes) = WIRE_BLOCKS[i];
        values[if aes { under_aes } else { plain }].bytes().to_vec()
    };
    Wire {
        client_init: get(0),
        server_init: get(1),
        client_data: get(2),
        server_data: get(3),
        client_term: get(4),
        server_term: get(5),
    }
}

// ----- the tests -----------------------------------------------------------------------------

#[test]
fn code_produces_the_document_vectors() {
    let generated = generate();
    let mut values = generated.values();
    let reference = reference_all(&values);
    if regenerating() {
        values.extend(reference);
        println!(
            "Replace the text between the markers in docs/PROTOCOL.md with:\n\n{BEGIN}{}{END}",
            render_region(&values)
        );
        return;
    }
    let doc = doc_blocks();
    let mut differences = Vec::new();
    for spec in specs().filter(|s| s.source != Source::Reference) {
        let (ours, theirs) = (&values[spec.name], &doc[spec.name]);
        if ours != theirs {
            differences.push(format!(
                "vector `{}` differs:\n  document: {}\n  code:     {}",
                spec.name,
                theirs.render().replace('\n', ""),
                ours.render().replace('\n', "")
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "docs/PROTOCOL.md does not match the code ({REGENERATE}=1 prints fresh vectors):\n{}",
        differences.join("\n")
    );
}

#[test]
fn reference_decoder_opens_the_document_vectors() {
    let doc = if regenerating() {
        generate().values()
    } else {
        doc_blocks()
    };
    let computed = reference_all(&doc);
    if regenerating() {
        return;
    }
    let mut differences = Vec::new();
    for (name, value) in &computed {
        assert_eq!(spec_of(name).source, Source::Reference);
        if doc[name] != *value {
            differences.push(format!(
                "intermediate `{name}` differs:\n  document:  {}\n  reference: {}",
                doc[name].render().replace('\n', ""),
                value.render().replace('\n', "")
            ));
        }
    }
    for spec in specs().filter(|s| s.source == Source::Reference) {
        assert!(
            computed.contains_key(spec.name),
            "the reference decoder does not compute `{}`",
            spec.name
        );
    }
    assert!(
        differences.is_empty(),
        "docs/PROTOCOL.md intermediates do not match the reference decoder:\n{}",
        differences.join("\n")
    );
}

#[test]
fn document_region_is_rendered_canonically() {
    if regenerating() {
        return;
    }
    let mut values = doc_blocks();
    values.insert("parameters", Value::Text(parameters_text()));
    let expected = render_region(&values);
    let found = doc_region();
    if found != expected {
        let line = found
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| found.lines().count().min(expected.lines().count()));
        panic!(
            "the vectors region of docs/PROTOCOL.md is not laid out as the test renders it \
             (first difference at region line {}: {:?} vs {:?}); \
             {REGENERATE}=1 prints the region",
            line + 1,
            found.lines().nth(line),
            expected.lines().nth(line)
        );
    }
}

#[test]
fn documented_rng_is_chacha20rng() {
    for seed in [KEY_RNG_SEED, CLIENT_SEED, SERVER_SEED] {
        let mut ours = DocRng::new(seed);
        let mut theirs = ChaCha20Rng::from_seed(seed);
        for round in 0..40usize {
            match round % 4 {
                0 => assert_eq!(ours.next_u32(), theirs.next_u32()),
                1 => assert_eq!(ours.next_u64(), theirs.next_u64()),
                2 => {
                    let mut buf = [0u8; 16];
                    theirs.fill_bytes(&mut buf);
                    assert_eq!(ours.bytes::<16>(), buf);
                }
                _ => {
                    // An odd length: the rest of the last word is discarded.
                    let mut buf = [0u8; 7];
                    theirs.fill_bytes(&mut buf);
                    assert_eq!(ours.bytes::<7>(), buf);
                }
            }
        }
    }
}

// ----- the reference decoder, from docs/PROTOCOL.md only -------------------------------------

const CLIENT_MASK_CONTEXT: &[u8] = b"PORT/1 client mask";
const SERVER_MASK_CONTEXT: &[u8] = b"PORT/1 server mask";

/// The AEAD of §2.1 and §20, with its two key-derivation contexts (§2.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Suite {
    ChaCha,
    Aes,
}

impl Suite {
    fn init_key_context(self) -> &'static str {
        match self {
            Suite::ChaCha => "PORT/1 2026-11 client INIT key",
            Suite::Aes => "PORT/1 2026-12 AES-256-GCM client INIT key",
        }
    }

    fn session_keys_context(self) -> &'static str {
        match self {
            Suite::ChaCha => "PORT/1 2026-11 session keys",
            Suite::Aes => "PORT/1 2026-12 AES-256-GCM session keys",
        }
    }
}
const TAG: usize = 16;
const CLIENT_PREFIX: usize = 16 + 32 + 24 + TAG;
const SERVER_PREFIX: usize = 32 + 20 + TAG;
const FRAME_HEADER_WIRE: usize = 12 + TAG;
const DATA: u8 = 0x01;
const TERM: u8 = 0x10;
/// Default PORT_MAX_FRAME_PAYLOAD and PORT_MAX_MESSAGE.
const MAX_PAYLOAD: u16 = 16_384;
const MAX_MESSAGE: u32 = 16_777_216;
/// Default PORT_MIN_NEXT_IN and PORT_MAX_NEXT_IN, in nanoseconds.
const MIN_NEXT_IN_NS: u64 = 32_000_000_000;
const MAX_NEXT_IN_NS: u64 = 64_000_000_000;
const DRAIN_MIN_NS: u64 = 30_000_000_000;
const DRAIN_MAX_NS: u64 = 90_000_000_000;

/// The generator of the vectors as the document describes it: the ChaCha20 block function
/// (RFC 8439, 20 rounds) keyed with the seed, a 64-bit block counter from 0 in words 12–13 and
/// zero in words 14–15, read as one stream of 32-bit words.
struct DocRng {
    key: [u32; 8],
    block: u64,
    words: [u32; 16],
    used: usize,
}

impl DocRng {
    fn new(seed: [u8; 32]) -> Self {
        DocRng {
            key: std::array::from_fn(|i| u32_le(&seed[4 * i..])),
            block: 0,
            words: [0; 16],
            used: 16,
        }
    }

    fn word(&mut self) -> u32 {
        if self.used == 16 {
            self.words = chacha20_block(&self.key, self.block);
            self.block += 1;
            self.used = 0;
        }
        self.used += 1;
        self.words[self.used - 1]
    }

    fn next_u32(&mut self) -> u32 {
        self.word()
    }

    /// Two words, the first one is the low half.
    fn next_u64(&mut self) -> u64 {
        let lo = u64::from(self.word());
        let hi = u64::from(self.word());
        hi << 32 | lo
    }

    /// `ceil(N / 4)` words, little-endian; the unused bytes of the last word are dropped.
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(4) {
            let word = self.word().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        out
    }

    /// A padding length in `0..=max`: `(r × (max + 1)) >> 32` for one word `r`.
    fn padding(&mut self, max: u16) -> u16 {
        ((u64::from(self.next_u32()) * (u64::from(max) + 1)) >> 32) as u16
    }

    /// A duration in `[lo, hi]` nanoseconds: `lo + (r × (hi − lo + 1)) >> 64` for one `u64` `r`.
    fn uniform_ns(&mut self, lo: u64, hi: u64) -> u64 {
        let r = u128::from(self.next_u64());
        lo + ((r * (u128::from(hi - lo) + 1)) >> 64) as u64
    }
}

fn chacha20_block(key: &[u32; 8], counter: u64) -> [u32; 16] {
    let mut input = [0u32; 16];
    input[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    input[4..12].copy_from_slice(key);
    input[12] = counter as u32;
    input[13] = (counter >> 32) as u32;
    let mut x = input;
    let quarter = |x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize| {
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(16);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(12);
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(8);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(7);
    };
    for _ in 0..10 {
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 1, 5, 9, 13);
        quarter(&mut x, 2, 6, 10, 14);
        quarter(&mut x, 3, 7, 11, 15);
        quarter(&mut x, 0, 5, 10, 15);
        quarter(&mut x, 1, 6, 11, 12);
        quarter(&mut x, 2, 7, 8, 13);
        quarter(&mut x, 3, 4, 9, 14);
    }
    std::array::from_fn(|i| x[i].wrapping_add(input[i]))
}

/// One direction of the suite's AEAD with the counter nonce of the document.
struct Opener {
    cipher: OpenerCipher,
    counter: u64,
}

enum OpenerCipher {
    ChaCha(ChaCha20Poly1305),
    Aes(Box<Aes256Gcm>),
}

impl Opener {
    fn new(suite: Suite, key: &[u8; 32]) -> Self {
        let cipher = match suite {
            Suite::ChaCha => OpenerCipher::ChaCha(ChaCha20Poly1305::new(key.into())),
            Suite::Aes => OpenerCipher::Aes(Box::new(Aes256Gcm::new(key.into()))),
        };
        Opener { cipher, counter: 0 }
    }

    /// Opens `ciphertext ‖ tag` with the next nonce; returns the plaintext.
    fn open(&mut self, what: &str, ad: &[u8], sealed: &[u8]) -> Vec<u8> {
        let mut nonce = Nonce::default();
        nonce[..8].copy_from_slice(&self.counter.to_le_bytes());
        self.counter += 1;
        let split = sealed
            .len()
            .checked_sub(TAG)
            .unwrap_or_else(|| panic!("{what}: shorter than a tag"));
        let mut plain = sealed[..split].to_vec();
        let tag = Tag::try_from(&sealed[split..]).expect("16-byte tag");
        let opened = match &self.cipher {
            OpenerCipher::ChaCha(c) => {
                c.decrypt_inout_detached(&nonce, ad, plain.as_mut_slice().into(), &tag)
            }
            OpenerCipher::Aes(c) => {
                c.decrypt_inout_detached(&nonce, ad, plain.as_mut_slice().into(), &tag)
            }
        };
        opened.unwrap_or_else(|_| panic!("{what}: does not authenticate"));
        plain
    }
}

fn u16_be(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn u32_be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn u32_le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn xor(a: &[u8], b: &[u8]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn keyed(seed: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    *blake3::keyed_hash(seed, &parts.concat()).as_bytes()
}

/// A contributory X25519 result (not all zero).
fn dh(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    let shared = x25519(*secret, *public);
    assert_ne!(shared, [0; 32], "X25519 result is all zero");
    shared
}

/// Parses `prefix` + base64url (no padding) of 64 bytes into (key, seed).
fn parse_key_text(text: &str, prefix: &str) -> ([u8; 32], [u8; 32]) {
    let payload = text
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("key text does not start with {prefix}"));
    assert_eq!(payload.len(), 86, "key text payload length");
    let bytes = base64url_decode(payload);
    assert_eq!(bytes.len(), 64);
    assert_eq!(base64url_encode(&bytes), payload, "non-canonical key text");
    let mut key = [0u8; 32];
    let mut seed = [0u8; 32];
    key.copy_from_slice(&bytes[..32]);
    seed.copy_from_slice(&bytes[32..]);
    (key, seed)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn base64url_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = B64
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("`{}` is not base64url", char::from(c)));
        bits = bits << 6 | v as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// Opens one frame (header then body, consuming two nonces) and checks it fully.
fn open_frame(
    what: &str,
    opener: &mut Opener,
    wire: &[u8],
    flags: u8,
    payload: &[u8],
    pad_len: u16,
) -> Vec<u8> {
    assert!(wire.len() >= FRAME_HEADER_WIRE, "{what}: too short");
    let header = opener.open(what, &[], &wire[..FRAME_HEADER_WIRE]);
    assert_eq!(header.len(), 12);
    assert_eq!(header[0], flags, "{what}: flags");
    assert_eq!(header[1], 0, "{what}: reserved byte 1");
    assert_eq!(
        usize::from(u16_be(&header[2..])),
        payload.len(),
        "{what}: payload length"
    );
    assert_eq!(u16_be(&header[4..]), pad_len, "{what}: padding length");
    assert_eq!(u16_be(&header[6..]), 0, "{what}: ping id");
    assert_eq!(u16_be(&header[8..]), 0, "{what}: pong id");
    assert_eq!(&header[10..12], &[0, 0], "{what}: reserved bytes 10–11");
    let body_len = payload.len() + usize::from(pad_len) + TAG;
    assert_eq!(
        wire.len(),
        FRAME_HEADER_WIRE + body_len,
        "{what}: wire length"
    );
    let body = opener.open(what, &[], &wire[FRAME_HEADER_WIRE..]);
    assert_eq!(&body[..payload.len()], payload, "{what}: payload");
    assert!(
        body[payload.len()..].iter().all(|&b| b == 0),
        "{what}: padding is not zeros"
    );
    header
}

/// Every intermediate value the reference decoder computes from the vectors in `values`.
fn reference_all(values: &Values) -> Values {
    let mut out = reference_decode(
        Suite::ChaCha,
        values["server-key"].text(),
        values["client-key"].text(),
        &wire_from(values, false),
    );
    let shaped = reference_shapes(values, &out);
    out.extend(shaped);
    let aes = reference_aes(values, &out);
    out.extend(aes);
    out
}

/// §20: the same exchange under AES-256-GCM, decoded in full; returns its keys.
fn reference_aes(values: &Values, plain_keys: &Values) -> Values {
    let line = values["aes-client-key"].text();
    let plain_line = line
        .strip_suffix("?cipher=aes-256-gcm")
        .unwrap_or_else(|| panic!("`aes-client-key` does not end with ?cipher=aes-256-gcm"));
    assert_eq!(plain_line, values["client-key"].text(), "the same server");
    let aes = wire_from(values, true);
    let plain = wire_from(values, false);
    for ((name, _), (a, p)) in WIRE_BLOCKS
        .iter()
        .zip(aes.blocks().iter().zip(plain.blocks()))
    {
        assert_eq!(a.len(), p.len(), "{name}: the cipher changes no length");
    }
    assert_eq!(
        aes.client_init[..16],
        plain.client_init[..16],
        "the same salt"
    );
    let decoded = reference_decode(Suite::Aes, values["server-key"].text(), plain_line, &aes);
    let mut out = Values::new();
    for (name, aes_name) in [
        ("init-key", "aes-init-key"),
        ("server-init-key", "aes-server-init-key"),
        ("client-to-server-key", "aes-client-to-server-key"),
        ("server-to-client-key", "aes-server-to-client-key"),
    ] {
        assert_ne!(decoded[name], plain_keys[name], "{name}: its own under AES");
        out.insert(aes_name, decoded[name].clone());
    }
    out
}

const ALPHABET_CONTEXT: &str = "PORT/1 2026-12-07 popcount alphabet";
const TLS_PREFIX: [u8; 11] = [
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];
const MIN_RECORD: u32 = 64;
const MAX_RECORD: u32 = 1448;

/// §18.2: the 64 byte values with the fewest (`low`) or most set bits, ties among them broken
/// by the 8-byte big-endian words of `DeriveKey(context, seed)`'s 2048-byte output (word `v`
/// for value `v`), then ranked by the same words.
fn reference_alphabet(seed: &[u8; 32], low: bool) -> [u8; 64] {
    let mut stream = [0u8; 2048];
    blake3::Hasher::new_derive_key(ALPHABET_CONTEXT)
        .update(seed)
        .finalize_xof()
        .fill(&mut stream);
    let word = |v: u8| u64::from_be_bytes(std::array::from_fn(|i| stream[8 * usize::from(v) + i]));
    let side = |v: u8| if low { v.count_ones() } else { v.count_zeros() };
    let mut values: Vec<u8> = (0..=255).collect();
    values.sort_by_key(|&v| (side(v), word(v)));
    values.truncate(64);
    values.sort_by_key(|&v| word(v));
    std::array::from_fn(|i| values[i])
}

/// `lo + (r × (hi − lo + 1)) >> 32` for one word `r`.
fn reference_uniform(r: u32, lo: u32, hi: u32) -> u32 {
    lo + ((u64::from(r) * (u64::from(hi - lo) + 1)) >> 32) as u32
}

/// Checks the shaped vectors against the plain ones and §18, and returns the intermediates.
fn reference_shapes(values: &Values, plain: &Values) -> Values {
    let mut out = Values::new();
    let seed: [u8; 32] = plain["seed"].bytes().try_into().expect("32 bytes");
    let low = reference_alphabet(&seed, true);
    let high = reference_alphabet(&seed, false);
    assert!(low.iter().all(|v| v.count_ones() <= 3));
    assert!(high.iter().all(|v| v.count_ones() >= 5));

    // The key line carries the shape, its prefix spelled out.
    let expected_line = format!(
        "{}?prefix={}&popcount=low&lengths=shaped",
        values["client-key"].text(),
        base64url_encode(&TLS_PREFIX)
    );
    assert_eq!(values["shaped-client-key"].text(), expected_line);

    // The first flight: prefix, then 4 symbols per 3 INIT bytes, the last group zero-filled.
    let init = values["client-init"].bytes();
    let mut expected = TLS_PREFIX.to_vec();
    for chunk in init.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        for shift in [18, 12, 6, 0] {
            expected.push(low[(bits >> shift & 0x3f) as usize]);
        }
    }
    assert_eq!(
        values["shaped-client-init"].bytes(),
        &expected[..],
        "shaped first flight"
    );

    // The record sizes: the client's draws after salt and ephemeral secret.
    let mut rng = DocRng::new(CLIENT_SEED);
    let _ = (
        rng.padding(TAIL_LENGTH),
        rng.bytes::<16>(),
        rng.bytes::<32>(),
    );
    let n = reference_uniform(rng.next_u32(), 4, 16);
    let mut pairs = Vec::new();
    for _ in 0..n {
        let size = reference_uniform(rng.next_u32(), MIN_RECORD, MAX_RECORD);
        let weight = reference_uniform(rng.next_u32(), 1, 1000);
        pairs.push((size, weight));
    }
    let total: u32 = pairs.iter().map(|p| p.1).sum();
    let point = reference_uniform(rng.next_u32(), 0, total - 1);
    let mut running = 0;
    let first = pairs
        .iter()
        .find(|p| {
            running += p.1;
            running > point
        })
        .expect("a size")
        .0;
    let listed: Vec<String> = pairs.iter().map(|(s, w)| format!("{s}:{w}")).collect();
    out.insert(
        "record-sizes",
        Value::Text(format!(
            "sizes = {n}\nsize:weight = {}\nfirst record = {first} bytes",
            listed.join(" ")
        )),
    );

    // Record 0: the DATA frame under K_c2s, counters 0 and 1, padded to fill the record.
    let c2s: [u8; 32] = plain["client-to-server-key"]
        .bytes()
        .try_into()
        .expect("32 bytes");
    let record = values["shaped-client-data"].bytes();
    assert_eq!(record.len(), first as usize, "record 0 has the drawn size");
    let pad = first as usize - FRAME_HEADER_WIRE - TAG - CLIENT_MESSAGE.len();
    open_frame(
        "shaped client DATA",
        &mut Opener::new(Suite::ChaCha, &c2s),
        record,
        DATA,
        CLIENT_MESSAGE,
        pad as u16,
    );
    out.insert("alphabet-low", Value::Bytes(low.to_vec()));
    out.insert("alphabet-high", Value::Bytes(high.to_vec()));
    out
}

/// Opens the whole exchange with the server key, re-derives every random draw from the
/// connection seeds, checks every field, and returns the intermediate values.
fn reference_decode(
    suite: Suite,
    server_key_text: &str,
    client_key_text: &str,
    wire: &Wire,
) -> Values {
    let mut out = Values::new();
    let mut put = |name: &'static str, bytes: &[u8]| {
        out.insert(name, Value::Bytes(bytes.to_vec()));
    };

    // Keys.
    let mut key_rng = DocRng::new(KEY_RNG_SEED);
    let (secret, seed) = parse_key_text(server_key_text, "port1-secret:");
    assert_eq!(secret, key_rng.bytes::<32>(), "server secret: first draw");
    assert_eq!(seed, key_rng.bytes::<32>(), "seed: second draw");
    let public = x25519(secret, X25519_BASEPOINT_BYTES);
    assert_eq!(
        parse_key_text(client_key_text, "port1-public:"),
        (public, seed),
        "client key = public ‖ seed"
    );
    put("server-secret", &secret);
    put("seed", &seed);
    put("server-public", &public);

    // Client INIT.
    let mut client_rng = DocRng::new(CLIENT_SEED);
    let init = &wire.client_init;
    assert!(init.len() >= CLIENT_PREFIX, "client INIT: too short");
    let client_pad = client_rng.padding(TAIL_LENGTH);
    let salt = client_rng.bytes::<16>();
    let e = client_rng.bytes::<32>();
    assert_eq!(&init[..16], &salt, "client INIT: salt is client draw 2");
    let mask = keyed(&seed, &[CLIENT_MASK_CONTEXT, &salt]);
    let client_public = xor(&init[16..48], &mask);
    assert_eq!(
        client_public,
        x25519(e, X25519_BASEPOINT_BYTES),
        "client INIT: unmasked key is X25519(e, 9) for client draw 3"
    );
    let es = dh(&secret, &client_public);
    assert_eq!(es, x25519(e, public), "es seen from both sides");
    let init_key = blake3::derive_key(
        suite.init_key_context(),
        &[&seed[..], &public, &salt, &client_public, &es].concat(),
    );
    let mut init_opener = Opener::new(suite, &init_key);
    let header = init_opener.open("client INIT header", &init[..48], &init[48..CLIENT_PREFIX]);
    assert_eq!(header.len(), 24);
    assert_eq!(header[0], 1, "client INIT: version");
    assert_eq!(header[1], 0, "client INIT: reserved byte 1");
    assert_eq!(header[2], CLIENT_TYPE, "client INIT: client type");
    assert_eq!(header[3], 0, "client INIT: reserved byte 3");
    assert_eq!(
        u64::from_be_bytes(header[4..12].try_into().expect("8 bytes")),
        UNIX_SECS,
        "client INIT: timestamp"
    );
    let token_len = usize::from(u16_be(&header[12..]));
    assert_eq!(token_len, TOKEN.len(), "client INIT: token length");
    let pad_len = u16_be(&header[14..]);
    assert_eq!(pad_len, client_pad, "client INIT: padding is client draw 1");
    assert_eq!(
        u16_be(&header[16..]),
        MAX_PAYLOAD,
        "client INIT: max payload"
    );
    assert_eq!(
        u32_be(&header[18..]),
        MAX_MESSAGE,
        "client INIT: max message"
    );
    // The vectors' client sends its first message after `Connected`: no early data (§5.8).
    let early_len = usize::from(u16_be(&header[22..]));
    assert_eq!(early_len, 0, "client INIT: early_len");
    assert_eq!(
        init.len(),
        CLIENT_PREFIX + token_len + early_len + usize::from(pad_len) + TAG,
        "client INIT: length"
    );
    let body = init_opener.open("client INIT body", &[], &init[CLIENT_PREFIX..]);
    assert_eq!(&body[..token_len], TOKEN, "client INIT: token");
    assert!(
        body[token_len + early_len..].iter().all(|&b| b == 0),
        "client INIT: padding is not zeros"
    );
    let th = *blake3::hash(init).as_bytes();
    put("client-salt", &salt);
    put("client-ephemeral-secret", &e);
    put("client-ephemeral-public", &client_public);
    put("client-mask", &mask);
    put("es", &es);
    put("init-key", &init_key);
    put("client-init-header", &header);
    put("transcript-hash", &th);

    // Server INIT.
    let mut server_rng = DocRng::new(SERVER_SEED);
    let drain = server_rng.uniform_ns(DRAIN_MIN_NS, DRAIN_MAX_NS);
    assert!((DRAIN_MIN_NS..=DRAIN_MAX_NS).contains(&drain));
    let f = server_rng.bytes::<32>();
    let client_first_ns = server_rng.uniform_ns(MIN_NEXT_IN_NS, MAX_NEXT_IN_NS);
    let _server_first_ns = server_rng.uniform_ns(MIN_NEXT_IN_NS, MAX_NEXT_IN_NS);
    let server_pad = server_rng.padding(TAIL_LENGTH);
    let reply = &wire.server_init;
    assert!(reply.len() >= SERVER_PREFIX, "server INIT: too short");
    let server_mask = keyed(&seed, &[SERVER_MASK_CONTEXT, &th]);
    let server_public = xor(&reply[..32], &server_mask);
    assert_eq!(
        server_public,
        x25519(f, X25519_BASEPOINT_BYTES),
        "server INIT: unmasked key is X25519(f, 9) for server draw 2"
    );
    let ee = dh(&e, &server_public);
    assert_eq!(ee, x25519(f, client_public), "ee seen from both sides");
    let mut okm = [0u8; 96];
    blake3::Hasher::new_derive_key(suite.session_keys_context())
        .update(
            &[
                &seed[..],
                &public,
                &client_public,
                &server_public,
                &th,
                &es,
                &ee,
            ]
            .concat(),
        )
        .finalize_xof()
        .fill(&mut okm);
    let part = |i: usize| -> [u8; 32] { std::array::from_fn(|j| okm[32 * i + j]) };
    let (server_init_key, c2s_key, s2c_key) = (part(0), part(1), part(2));
    assert_eq!(
        server_init_key,
        blake3::derive_key(
            suite.session_keys_context(),
            &[
                &seed[..],
                &public,
                &client_public,
                &server_public,
                &th,
                &es,
                &ee
            ]
            .concat()
        ),
        "the first 32 output bytes are plain derive_key"
    );
    let mut server_opener = Opener::new(suite, &server_init_key);
    let header = server_opener.open(
        "server INIT header",
        &reply[..32],
        &reply[32..SERVER_PREFIX],
    );
    assert_eq!(header.len(), 20);
    assert_eq!(u16_be(&header[0..]), 0, "server INIT: status success");
    assert_eq!(u32_be(&header[2..]), USER_ID, "server INIT: user id");
    assert_eq!(
        u64::from(u32_be(&header[6..])),
        client_first_ns / 1_000_000,
        "server INIT: next_in is server draw 3, in whole milliseconds"
    );
    let pad_len = u16_be(&header[10..]);
    assert_eq!(pad_len, server_pad, "server INIT: padding is server draw 5");
    assert_eq!(
        u16_be(&header[12..]),
        MAX_PAYLOAD,
        "server INIT: max payload"
    );
    assert_eq!(
        u32_be(&header[14..]),
        MAX_MESSAGE,
        "server INIT: max message"
    );
    assert_eq!(&header[18..], &[0, 0], "server INIT: reserved bytes 18–19");
    assert_eq!(
        reply.len(),
        SERVER_PREFIX + usize::from(pad_len) + TAG,
        "server INIT: length"
    );
    let body = server_opener.open("server INIT body", &[], &reply[SERVER_PREFIX..]);
    assert!(
        body.iter().all(|&b| b == 0),
        "server INIT: padding is not zeros"
    );
    put("server-ephemeral-secret", &f);
    put("server-ephemeral-public", &server_public);
    put("server-mask", &server_mask);
    put("ee", &ee);
    put("server-init-key", &server_init_key);
    put("client-to-server-key", &c2s_key);
    put("server-to-client-key", &s2c_key);
    put("server-init-header", &header);

    // Frames: one counter per direction, header then body.
    let mut c2s = Opener::new(suite, &c2s_key);
    let mut s2c = Opener::new(suite, &s2c_key);
    let pad = client_rng.padding(TAIL_LENGTH);
    let h = open_frame(
        "client DATA",
        &mut c2s,
        &wire.client_data,
        DATA,
        CLIENT_MESSAGE,
        pad,
    );
    put("client-data-header", &h);
    let pad = server_rng.padding(TAIL_LENGTH);
    let h = open_frame(
        "server DATA",
        &mut s2c,
        &wire.server_data,
        DATA,
        SERVER_REPLY,
        pad,
    );
    put("server-data-header", &h);
    let pad = client_rng.padding(TAIL_LENGTH);
    let h = open_frame("client TERM", &mut c2s, &wire.client_term, TERM, &[], pad);
    put("client-term-header", &h);
    let pad = server_rng.padding(TAIL_LENGTH);
    let h = open_frame("server TERM", &mut s2c, &wire.server_term, TERM, &[], pad);
    put("server-term-header", &h);
    out
}

// ----- hex -----------------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err(format!("odd number of digits ({})", text.len()));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("bad digits at {i}"))
        })
        .collect()
}
