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

use bytes::Bytes;
use chaos::label::{Kind, SentMessage};
use port_core::Session;
use port_core::record::{MessageKind, MessageRecord};

use crate::error::Error;
use crate::tap::{Tap, Tapped};

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

    fn write(&self, connection: u32, records: Vec<MessageRecord>) {
        if records.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        for r in records {
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
                // A full disk loses records, not the connection.
                let _ = writeln!(out, "{text}");
            }
        }
    }
}

/// A session whose sent messages go to a [`Recorder`].
pub type Recorded = Tapped<RecordTap>;

/// The [`Tap`] of a [`Recorded`] session: which recorder, and which connection it is.
pub struct RecordTap {
    recorder: Recorder,
    connection: u32,
}

impl Recorded {
    /// Wraps `inner` and starts its record (before anything was sent, so a client's INIT is
    /// included).
    pub fn recording(mut inner: Box<dyn Session + Send>, recorder: Recorder) -> Recorded {
        inner.record_messages(true);
        let connection = recorder.connections.fetch_add(1, Ordering::Relaxed);
        Tapped::new(
            inner,
            RecordTap {
                recorder,
                connection,
            },
        )
    }
}

impl Tap for RecordTap {
    fn transmit(&mut self, session: &mut dyn Session, _bytes: Option<&Bytes>) {
        // What was sealed goes out with these bytes: write its record now.
        self.recorder
            .write(self.connection, session.drain_records());
    }
}
