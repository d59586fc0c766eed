//! `--record FILE`: one JSON line per PORT message a session sent (kind, payload and padding
//! sizes, bytes on the wire, milliseconds since the program started, and which of the
//! program's connections sent it), so that a packet capture of the run can be labelled by
//! message kind. The lines are the `chaos` crate's [`SentMessage`].

use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use port_chaos::label::{Kind, SentMessage};
use port_core::record::{MessageKind, MessageRecord, RecordSink};

use crate::error::Error;

/// Where the sessions of one program write their records.
#[derive(Clone, Debug)]
pub struct Recorder {
    out: Arc<Mutex<LineWriter<File>>>,
    start: Instant,
    connections: Arc<AtomicU32>,
}

impl Recorder {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Recorder, Error> {
        let file = File::create(path)
            .map_err(|e| Error::msg(format!("cannot create {}: {e}", path.display())))?;
        Ok(Recorder {
            out: Arc::new(Mutex::new(LineWriter::new(file))),
            start: Instant::now(),
            connections: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Where the next connection's records go: each gets the next connection number.
    pub fn sink(&self) -> Box<dyn RecordSink> {
        let recorder = self.clone();
        let connection = self.connections.fetch_add(1, Ordering::Relaxed);
        Box::new(move |record| recorder.write(connection, record))
    }

    fn write(&self, connection: u32, r: MessageRecord) {
        let line = SentMessage {
            connection,
            kind: match r.kind {
                MessageKind::Init => Kind::Init,
                MessageKind::Data => Kind::Data,
                MessageKind::Term => Kind::Term,
                MessageKind::Keepalive => Kind::Keepalive,
                _ => Kind::Other,
            },
            payload: r.payload,
            padding: r.padding,
            wire: r.wire,
            at_ms: r.at.saturating_duration_since(self.start).as_millis() as u64,
        };
        if let Ok(text) = serde_json::to_string(&line) {
            let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
            // A full disk loses records, not the connection.
            let _ = writeln!(out, "{text}");
        }
    }
}
