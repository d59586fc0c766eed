//! The client's SOCKS5 mode (RFC 1928, with RFC 1929 username/password): each CONNECT names
//! a target, which travels to the server with the token (see [`crate::target`]); the server's
//! refusal comes back as the SOCKS5 reply that says the same ([`Refusal::socks_reply`]).
//! Only CONNECT is carried; BIND and UDP ASSOCIATE get "command not supported".

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use socks5_proto::handshake::{self, Method, password};
use socks5_proto::{Address, Command, Reply, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::client::{Shared, carry_counted, open};
use crate::copy::close_gently;
use crate::error::Error;
use crate::refusal::Refusal;
use crate::target::Target;

/// The user name and password SOCKS5 clients must give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    user: Vec<u8>,
    password: Vec<u8>,
}

impl Credentials {
    /// Reads a file of one `USER:PASSWORD` line (`#` comment lines and blank lines skipped);
    /// each part 1 to 255 bytes, the user without `:`.
    pub fn read(path: &Path) -> Result<Credentials, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::msg(format!(
                "cannot read --socks5-auth file {}: {e}",
                path.display()
            ))
        })?;
        Credentials::parse(&text).map_err(|why| {
            Error::msg(format!(
                "bad --socks5-auth file {}: {why} (expected one USER:PASSWORD line, each part 1 \
                 to 255 bytes)",
                path.display()
            ))
        })
    }

    fn parse(text: &str) -> Result<Credentials, &'static str> {
        let mut lines = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let line = lines.next().ok_or("it holds no line")?;
        if lines.next().is_some() {
            return Err("it holds more than one line");
        }
        let (user, password) = line.split_once(':').ok_or("no ':' in the line")?;
        let fits = |part: &str| (1..=255).contains(&part.len());
        if !fits(user) || !fits(password) {
            return Err("a part is empty or longer than 255 bytes");
        }
        Ok(Credentials {
            user: user.as_bytes().to_vec(),
            password: password.as_bytes().to_vec(),
        })
    }
}

/// Why a SOCKS5 exchange ended before anything was carried, for the log.
type Failure = String;

/// Serves one SOCKS5 client: negotiation, the request, the tunnel, then the carrying.
pub(crate) async fn serve(mut tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let target = match negotiate(&mut tcp, shared.socks5_auth.as_ref()).await {
        Ok(target) => target,
        Err(why) => {
            tracing::debug!(%peer, %why, "SOCKS5 request refused");
            return close_gently(tcp).await;
        }
    };
    // The application waits for the SOCKS5 reply before it sends: no early data.
    match open(&shared, peer, Some(&target), Bytes::new()).await {
        Ok(stream) => {
            if reply(&mut tcp, Reply::Succeeded).await.is_ok() {
                carry_counted(tcp, stream, peer, &shared).await;
            }
        }
        Err(e) => {
            let refused = match e {
                port_tokio::Error::Rejected(status) => {
                    Refusal::from_status(status).map_or(Reply::GeneralFailure, Refusal::socks_reply)
                }
                _ => Reply::GeneralFailure,
            };
            if reply(&mut tcp, refused).await.is_ok() {
                close_gently(tcp).await;
            }
        }
    }
}

/// Runs the method negotiation and reads the request; returns its target, or answers the
/// client with the reply that ends the exchange and says why.
async fn negotiate(tcp: &mut TcpStream, auth: Option<&Credentials>) -> Result<Target, Failure> {
    let hello = handshake::Request::read_from(tcp)
        .await
        .map_err(|e| format!("bad greeting: {e}"))?;
    let wanted = match auth {
        Some(_) => Method::PASSWORD,
        None => Method::NONE,
    };
    if !hello.methods.contains(&wanted) {
        let _ = handshake::Response::new(Method::UNACCEPTABLE)
            .write_to(tcp)
            .await;
        return Err(format!(
            "the client does not offer method {:#04x}",
            u8::from(wanted)
        ));
    }
    handshake::Response::new(wanted)
        .write_to(tcp)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(expected) = auth {
        let given = password::Request::read_from(tcp)
            .await
            .map_err(|e| format!("bad authentication request: {e}"))?;
        let ok = given.username == expected.user && given.password == expected.password;
        password::Response::new(ok)
            .write_to(tcp)
            .await
            .map_err(|e| e.to_string())?;
        if !ok {
            return Err("wrong user name or password".to_owned());
        }
    }
    let request = match Request::read_from(tcp).await {
        Ok(request) => request,
        Err(e) => {
            let _ = reply(tcp, Reply::GeneralFailure).await;
            return Err(format!("bad request: {e}"));
        }
    };
    if !matches!(request.command, Command::Connect) {
        let _ = reply(tcp, Reply::CommandNotSupported).await;
        return Err(format!("command {:?} is not carried", request.command));
    }
    match Target::from_socks(&request.address) {
        Ok(target) => Ok(target),
        Err(why) => {
            let _ = reply(tcp, Reply::AddressTypeNotSupported).await;
            Err(format!("bad target: {why}"))
        }
    }
}

/// Sends the reply to the request. The bound address is not known here (the server made the
/// connection), so it is the unspecified one, as proxies commonly answer.
async fn reply(tcp: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    Response::new(reply, Address::unspecified())
        .write_to(tcp)
        .await?;
    tcp.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_files_hold_one_line() {
        let c = Credentials::parse("# proxy\nalice:s3cr:et\n").unwrap();
        assert_eq!(
            (c.user.as_slice(), c.password.as_slice()),
            (&b"alice"[..], &b"s3cr:et"[..])
        );
        assert!(Credentials::parse("").is_err());
        assert!(Credentials::parse("a:b\nc:d\n").is_err());
        assert!(Credentials::parse("nocolon\n").is_err());
        assert!(Credentials::parse(":pw\n").is_err());
        assert!(Credentials::parse(&format!("u:{}\n", "p".repeat(256))).is_err());
    }
}
