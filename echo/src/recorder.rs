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
use port_core::record::{MessageKind, MessageRecord};
use port_core::{Event, Session, Status};

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
pub struct Recorded {
    inner: Box<dyn Session + Send>,
    recorder: Recorder,
    connection: u32,
}

impl Recorded {
    /// Wraps `inner` and starts its record (before anything was sent, so a client's INIT is
    /// included).
    pub fn new(mut inner: Box<dyn Session + Send>, recorder: Recorder) -> Recorded {
        inner.record_messages(true);
        let connection = recorder.connections.fetch_add(1, Ordering::Relaxed);
        Recorded {
            inner,
            recorder,
            connection,
        }
    }
}

impl Session for Recorded {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.inner.handle_input(now, data);
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        let bytes = self.inner.poll_transmit(now);
        // What was sealed goes out with these bytes: write its record now.
        self.recorder
            .write(self.connection, self.inner.drain_records());
        bytes
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.inner.poll_event()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }
    fn send(&mut self, data: Bytes) -> Result<(), port_core::Error> {
        self.inner.send(data)
    }
    fn close(&mut self) {
        self.inner.close();
    }
    fn accept(&mut self, user_id: u32) -> Result<(), port_core::Error> {
        self.inner.accept(user_id)
    }
    fn reject(&mut self, status: Status) -> Result<(), port_core::Error> {
        self.inner.reject(status)
    }
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
    fn handle_transport_end(&mut self, now: Instant) {
        self.inner.handle_transport_end(now);
    }
    fn is_send_closed(&self) -> bool {
        self.inner.is_send_closed()
    }
    fn is_send_finished(&self) -> bool {
        self.inner.is_send_finished()
    }
    fn is_peer_finished(&self) -> bool {
        self.inner.is_peer_finished()
    }
    fn send_buffered(&self) -> usize {
        self.inner.send_buffered()
    }
    fn max_message(&self) -> usize {
        self.inner.max_message()
    }
    fn handle_redirected(&mut self, now: Instant) {
        self.inner.handle_redirected(now);
    }
    fn needs_redirect(&self) -> bool {
        self.inner.needs_redirect()
    }
    fn record_messages(&mut self, on: bool) {
        self.inner.record_messages(on);
    }
    fn drain_records(&mut self) -> Vec<MessageRecord> {
        self.inner.drain_records()
    }
}
