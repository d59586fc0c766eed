//! The link between the two namespaces: a TUN device in each, and a bridge in this process
//! that moves every IP packet from one device to the other through the [`Injector`].
//!
//! The devices are created in the harness's own namespace, where this process runs, and then
//! moved into their namespaces with `ip link set DEV netns PID`: the open file descriptor
//! stays attached to the device, so the bridge reads and writes it from its own namespace
//! without entering any other. Each device is point-to-point: the client's carries `10.213.0.1 peer
//! 10.213.0.2`, the server's the reverse, so each side's route to the other leads into the
//! bridge.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tun_rs::{AsyncDevice, DeviceBuilder};

use crate::Error;
use crate::faults::Faults;
use crate::inject::Injector;
use crate::netns::{CLIENT_ADDR, Namespaces, SERVER_ADDR, ip};
use crate::record::{Direction, PacketRecord};

/// What the bridge's tasks share with the owner.
struct Shared {
    start: Instant,
    injector: Mutex<Injector>,
    records: Mutex<Vec<PacketRecord>>,
}

/// Two namespaces joined by a fault-injecting bridge; everything is removed on drop.
pub struct Link {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    // Dropped last: the devices close with the bridge thread, then the namespaces go.
    namespaces: Namespaces,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("namespaces", &self.namespaces)
            .finish_non_exhaustive()
    }
}

fn device(name: &str) -> std::io::Result<AsyncDevice> {
    DeviceBuilder::new()
        .name(name)
        .mtu(1500)
        .packet_information(false)
        .build_async()
}

/// Moves packets from `from` to `to` until the device fails.
async fn pump(
    shared: Arc<Shared>,
    from: Arc<AsyncDevice>,
    to: Arc<AsyncDevice>,
    direction: Direction,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok(n) = from.recv(&mut buf).await else {
            return;
        };
        let at = shared.start.elapsed();
        let (copies, record) = shared
            .injector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(at, direction, buf[..n].to_vec());
        shared
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
        for copy in copies {
            if copy.delay.is_zero() {
                let _ = to.send(&copy.bytes).await;
            } else {
                let to = to.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(copy.delay).await;
                    let _ = to.send(&copy.bytes).await;
                });
            }
        }
    }
}

impl Link {
    /// Creates the namespaces and devices and starts the bridge with `faults`, seeded with
    /// `seed`. Call [`preflight::check`](crate::preflight::check) first for a clear error on a
    /// machine that lacks the capability.
    pub fn up(faults: Faults, seed: u64) -> Result<Link, Error> {
        let namespaces = Namespaces::create()?;
        let pid = std::process::id();
        let names = (format!("ptc{pid}"), format!("pts{pid}"));
        let shared = Arc::new(Shared {
            start: Instant::now(),
            injector: Mutex::new(Injector::new(faults, seed)),
            records: Mutex::new(Vec::new()),
        });
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread_shared = shared.clone();
        let thread_names = names.clone();
        let thread = std::thread::Builder::new()
            .name("chaos-bridge".to_owned())
            .spawn(move || bridge(thread_shared, thread_names, ready_tx, stop_rx))
            .map_err(|e| Error(format!("cannot start the bridge thread: {e}")))?;
        let mut link = Link {
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
            namespaces,
        };
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error(format!("cannot create the TUN devices: {e}"))),
            Err(_) => return Err(Error("the bridge did not start".to_owned())),
        }
        link.configure(&names.0, &names.1)?;
        Ok(link)
    }

    fn configure(&mut self, client_dev: &str, server_dev: &str) -> Result<(), Error> {
        let sides = [
            (
                client_dev,
                &self.namespaces.client,
                CLIENT_ADDR,
                SERVER_ADDR,
            ),
            (
                server_dev,
                &self.namespaces.server,
                SERVER_ADDR,
                CLIENT_ADDR,
            ),
        ];
        for (dev, ns, local, peer) in sides {
            let (local, peer) = (local.to_string(), peer.to_string());
            ip(&["link", "set", dev, "netns", &ns.pid().to_string()])?;
            ns.ip(&["addr", "add", &local, "peer", &peer, "dev", dev])?;
            ns.ip(&["link", "set", dev, "up"])?;
        }
        Ok(())
    }

    /// The namespaces (to run processes in them).
    pub fn namespaces(&self) -> &Namespaces {
        &self.namespaces
    }

    /// Time since the bridge started (the records' clock).
    pub fn elapsed(&self) -> Duration {
        self.shared.start.elapsed()
    }

    /// Drops every packet from now on.
    pub fn blackhole_now(&self) {
        let now = self.elapsed();
        self.shared
            .injector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blackhole_from(now);
    }

    /// Every packet seen so far, in the order read.
    pub fn records(&self) -> Vec<PacketRecord> {
        self.shared
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the bridge, removes the devices and namespaces, and returns the record.
    pub fn down(mut self) -> Vec<PacketRecord> {
        self.stop_bridge();
        self.records()
    }

    fn stop_bridge(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop_bridge();
    }
}

/// The bridge thread: creates the devices, reports, pumps both ways until told to stop.
fn bridge(
    shared: Arc<Shared>,
    (client_dev, server_dev): (String, String),
    ready: mpsc::Sender<Result<(), String>>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    runtime.block_on(async move {
        let devices = device(&client_dev).and_then(|c| Ok((c, device(&server_dev)?)));
        let (client, server) = match devices {
            Ok((c, s)) => (Arc::new(c), Arc::new(s)),
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let up = tokio::spawn(pump(
            shared.clone(),
            client.clone(),
            server.clone(),
            Direction::ToServer,
        ));
        let down = tokio::spawn(pump(shared, server, client, Direction::ToClient));
        let _ = stop.await;
        up.abort();
        down.abort();
    });
    // Dropping the runtime drops the delayed copies still waiting, and the devices.
    drop(runtime);
}
