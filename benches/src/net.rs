//! Connected loopback pairs on tokio, one per transport under comparison, and the bulk
//! transfers run over them. Every TCP socket has `TCP_NODELAY` set (port-tokio always sets it;
//! the baselines are given the same).

use std::io;

use bytes::Bytes;
use port_core::Config;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use crate::pair::{Setups, USER_ID};
use crate::tls::TlsConfigs;

/// A multi-threaded tokio runtime with one worker per logical CPU.
///
/// # Panics
/// If the runtime cannot be built.
pub fn runtime() -> Runtime {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Two plain TCP streams connected over 127.0.0.1: (client, server).
pub async fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, (server, _)) = (client?, accepted?);
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

/// A TLS 1.3 connection over loopback through tokio-rustls: (client, server).
pub async fn tls_pair(
    configs: &TlsConfigs,
) -> io::Result<(client::TlsStream<TcpStream>, server::TlsStream<TcpStream>)> {
    let (client, server) = tcp_pair().await?;
    let connector = TlsConnector::from(configs.client.clone());
    let acceptor = TlsAcceptor::from(configs.server.clone());
    let (client, server) = tokio::join!(
        connector.connect(TlsConfigs::server_name(), client),
        acceptor.accept(server)
    );
    Ok((client?, server?))
}

/// A PORT connection over loopback through port-tokio: (client, server).
///
/// # Errors
/// If binding, connecting or the handshake fails.
pub async fn port_pair(
    config: Config,
) -> Result<(port_tokio::Stream, port_tokio::Stream), port_tokio::Error> {
    keyed_port_pair(Setups::new(config)).await
}

/// [`port_pair`] with `setups` (a key with a shape or a cipher of its own, say).
///
/// # Errors
/// If binding, connecting or the handshake fails.
pub async fn keyed_port_pair(
    setups: Setups,
) -> Result<(port_tokio::Stream, port_tokio::Stream), port_tokio::Error> {
    let rt = port_tokio::runtime();
    let listener = port_tokio::Listener::bind(&rt, "127.0.0.1:0", setups.server.clone()).await?;
    let addr = listener.local_addr()?;
    let accept = async {
        let incoming = listener.accept().await?;
        incoming.accept(USER_ID)
    };
    let (client, server) = tokio::join!(port_tokio::connect(&rt, addr, &setups.client), accept);
    Ok((client?, server?))
}

/// A transfer function: one bulk transfer of `total` bytes per call over a byte stream,
/// `writer` sending in `write`-byte writes on one task, `reader` receiving on another. The
/// streams are kept from call to call.
///
/// # Panics
/// If a write or a read fails, or the stream ends early.
pub fn bulk_stream<W, R>(
    rt: &Runtime,
    writer: W,
    reader: R,
    total: usize,
    write: usize,
) -> impl FnMut() + '_
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let mut slot = Some((writer, reader));
    move || {
        let (mut writer, mut reader) = slot.take().expect("streams");
        let send = rt.spawn(async move {
            let chunk = vec![0x5Au8; write];
            let mut sent = 0;
            while sent < total {
                let n = write.min(total - sent);
                writer.write_all(&chunk[..n]).await.expect("write");
                sent += n;
            }
            writer.flush().await.expect("flush");
            writer
        });
        let recv = rt.spawn(async move {
            let mut buf = vec![0u8; write];
            let mut got = 0;
            while got < total {
                let n = reader.read(&mut buf).await.expect("read");
                assert!(n > 0, "the stream ended early");
                got += n;
            }
            reader
        });
        let (writer, reader) = rt.block_on(async { (send.await, recv.await) });
        slot = Some((writer.expect("sender"), reader.expect("receiver")));
    }
}

/// One bulk transfer of `total` bytes per call through the PORT message API, in messages of
/// `size` bytes (one shared `Bytes`, so sending copies nothing), `client` sending and `server`
/// receiving on separate tasks.
///
/// # Panics
/// If sending or receiving fails.
pub fn bulk_messages(
    rt: &Runtime,
    client: port_tokio::Stream,
    server: port_tokio::Stream,
    total: usize,
    size: usize,
) -> impl FnMut() + '_ {
    let mut slot = Some((client, server));
    let message = Bytes::from(vec![0x5Au8; size]);
    move || {
        let (mut client, mut server) = slot.take().expect("streams");
        let message = message.clone();
        let send = rt.spawn(async move {
            for _ in 0..total.div_ceil(size) {
                client.send(message.clone()).await.expect("send");
            }
            client
        });
        let recv = rt.spawn(async move {
            let mut got = 0;
            while got < total.div_ceil(size) * size {
                got += server.recv().await.expect("recv").expect("message").len();
            }
            server
        });
        let (client, server) = rt.block_on(async { (send.await, recv.await) });
        slot = Some((client.expect("sender"), server.expect("receiver")));
    }
}
