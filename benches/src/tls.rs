//! The TLS 1.3 baseline: rustls with its `ring` provider (it builds with a C compiler alone;
//! `aws-lc-rs` would need more), X25519 only, one cipher suite (the one compared:
//! `TLS13_CHACHA20_POLY1305_SHA256` against PORT's default, `TLS13_AES_256_GCM_SHA384` against
//! its AES-256-GCM suite), and an Ed25519 certificate generated once at start-up with `rcgen`.
//!
//! Session resumption is off on both sides (no tickets issued, none cached), so every
//! handshake is a full one, as every PORT handshake is.

use std::sync::Arc;

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConnection, Connection, RootCertStore, ServerConnection, SupportedCipherSuite};

/// TLS's ChaCha20-Poly1305 suite, as PORT's default cipher.
pub const CHACHA: SupportedCipherSuite = ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256;
/// TLS's AES-256-GCM suite, as PORT's `cipher=aes-256-gcm`.
pub const AES: SupportedCipherSuite = ring::cipher_suite::TLS13_AES_256_GCM_SHA384;

/// The name in the certificate and the one the client asks for.
pub const SERVER_NAME: &str = "port.bench";

/// A client and a server configuration that trust each other.
#[derive(Clone, Debug)]
pub struct TlsConfigs {
    /// The client's: trusts the generated certificate, no resumption.
    pub client: Arc<rustls::ClientConfig>,
    /// The server's: presents the generated certificate, issues no tickets.
    pub server: Arc<rustls::ServerConfig>,
}

/// The ring provider restricted to X25519 and `suite`.
pub fn provider(suite: SupportedCipherSuite) -> Arc<CryptoProvider> {
    let mut provider = ring::default_provider();
    provider.cipher_suites = vec![suite];
    provider.kx_groups = vec![ring::kx_group::X25519];
    Arc::new(provider)
}

impl TlsConfigs {
    /// Generates an Ed25519 key and a self-signed certificate for [`SERVER_NAME`] and builds
    /// both configurations (TLS 1.3 only, `suite` only).
    ///
    /// # Panics
    /// If generating the certificate or building a configuration fails.
    pub fn generate(suite: SupportedCipherSuite) -> TlsConfigs {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
        let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_owned()])
            .expect("certificate parameters")
            .self_signed(&key)
            .expect("self-signed certificate");
        let cert_der: CertificateDer<'static> = cert.der().clone();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));

        let mut roots = RootCertStore::empty();
        roots.add(cert_der.clone()).expect("trust anchor");
        let mut client = rustls::ClientConfig::builder_with_provider(provider(suite))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3 with ring")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.resumption = rustls::client::Resumption::disabled();

        let mut server = rustls::ServerConfig::builder_with_provider(provider(suite))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3 with ring")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key_der)
            .expect("server certificate");
        server.send_tls13_tickets = 0;

        TlsConfigs {
            client: Arc::new(client),
            server: Arc::new(server),
        }
    }

    /// The name the client connects to.
    pub fn server_name() -> ServerName<'static> {
        ServerName::try_from(SERVER_NAME).expect("a valid DNS name")
    }
}

/// Runs one full TLS 1.3 handshake in memory: `write_tls` into a `Vec`, `read_tls` from it,
/// until neither side is handshaking. Returns both connections (client, server), ready for
/// application data, and the bytes both sides sent.
///
/// # Panics
/// If either side reports an error or the handshake does not finish within a few flights.
pub fn handshake(configs: &TlsConfigs, wire: &mut Vec<u8>) -> (Connection, Connection, usize) {
    let client = ClientConnection::new(configs.client.clone(), TlsConfigs::server_name())
        .expect("client connection");
    let server = ServerConnection::new(configs.server.clone()).expect("server connection");
    let (mut client, mut server) = (Connection::Client(client), Connection::Server(server));
    let mut bytes = 0;
    for _flight in 0..8 {
        bytes += transfer(&mut client, &mut server, wire);
        bytes += transfer(&mut server, &mut client, wire);
        if !client.is_handshaking() && !server.is_handshaking() {
            return (client, server, bytes);
        }
    }
    panic!("the TLS handshake did not complete");
}

/// Moves everything `from` wants to write into `to`, processing it. Returns the bytes moved.
fn transfer(from: &mut Connection, to: &mut Connection, wire: &mut Vec<u8>) -> usize {
    wire.clear();
    while from.wants_write() {
        from.write_tls(wire).expect("write_tls into a Vec");
    }
    let mut rest = &wire[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("read_tls from a slice");
        to.process_new_packets().expect("TLS handshake");
    }
    wire.len()
}
