//! One keep-alive HTTP/1.1 connection, opened from a chosen loopback source address.
//!
//! hyper's low-level client (`client::conn::http1`) rather than a pooled client: each worker owns
//! exactly one connection, so the number of connections is what `--concurrency` says and the
//! socket can be bound to a source address before connecting, which is how the server sees
//! many clients over loopback.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

use crate::traffic::Body;

/// Highest `--source-ips`: addresses 127.1.0.1 to 127.255.255.254.
pub const MAX_SOURCE_IPS: u32 = 255 * 65_536 - 2;

/// Source address `index`: 127.1.0.1, 127.1.0.2, … All of 127.0.0.0/8 routes to the loopback
/// interface on Linux, and 127.1.x.y keeps clear of 127.0.0.1, the usual server address.
pub fn source_ip(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 0)) + 1 + index % MAX_SOURCE_IPS)
}

/// Why a request got no answer. What matters for the report is which step failed, and for
/// the store check whether the server may have received the request anyway.
#[derive(Debug)]
pub enum RequestError {
    /// The TCP connection could not be made (refused, no ports left, bind failed).
    Connect(io::Error),
    /// The HTTP/1 handshake failed.
    Handshake(hyper::Error),
    /// Sending or reading the response head failed.
    Send(hyper::Error),
    /// The response body broke off.
    Body(hyper::Error),
    /// No complete answer within `--timeout`.
    Timeout,
}

impl RequestError {
    /// A short name for reports: `connect`, `handshake`, `send`, `body`, `timeout`.
    pub fn class(&self) -> &'static str {
        match self {
            RequestError::Connect(_) => "connect",
            RequestError::Handshake(_) => "handshake",
            RequestError::Send(_) => "send",
            RequestError::Body(_) => "body",
            RequestError::Timeout => "timeout",
        }
    }

    /// Whether the request may have reached the server: then a vote might be stored although
    /// it was never answered.
    pub fn maybe_delivered(&self) -> bool {
        !matches!(self, RequestError::Connect(_) | RequestError::Handshake(_))
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Connect(e) => write!(f, "connect: {e}"),
            RequestError::Handshake(e) => write!(f, "handshake: {e}"),
            RequestError::Send(e) => write!(f, "send: {e}"),
            RequestError::Body(e) => write!(f, "body: {e}"),
            RequestError::Timeout => f.write_str("timed out"),
        }
    }
}

impl std::error::Error for RequestError {}

/// How to open a connection to the target.
#[derive(Clone, Copy, Debug)]
pub struct Connector {
    pub target: SocketAddr,
    /// Address to bind before connecting; `None` lets the kernel choose.
    pub source: Option<IpAddr>,
}

impl Connector {
    /// Opens a connection and starts its hyper task.
    pub async fn connect(&self) -> Result<Connection, RequestError> {
        let socket = match self.target {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(RequestError::Connect)?;
        if let Some(ip) = self.source {
            socket.bind(SocketAddr::new(ip, 0)).map_err(RequestError::Connect)?;
        }
        let stream = socket.connect(self.target).await.map_err(RequestError::Connect)?;
        // Requests are small and sent whole; Nagle would only add delay.
        stream.set_nodelay(true).map_err(RequestError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(RequestError::Handshake)?;
        // The task ends when the connection closes; its error, if any, reaches the sender.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender })
    }
}

/// An open connection.
pub struct Connection {
    sender: SendRequest<Body>,
}

/// What came back: the status, and the response head for the few callers that need headers.
pub type Answer = Response<()>;

impl Connection {
    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Waits until the connection can take the next request; false if it closed meanwhile.
    pub async fn usable(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    /// Sends `req` and reads the whole response body, so the connection is ready for the next
    /// request and the time measured includes the transfer.
    pub async fn send(&mut self, req: Request<Body>) -> Result<Answer, RequestError> {
        let res = self.sender.send_request(req).await.map_err(RequestError::Send)?;
        let (head, body) = res.into_parts();
        body.collect().await.map_err(RequestError::Body)?;
        Ok(Response::from_parts(head, ()))
    }
}

/// A connection that reopens itself when the server closed it or a request failed.
pub struct Client {
    connector: Connector,
    connection: Option<Connection>,
    timeout: Duration,
}

impl Client {
    /// Connects lazily, at the first request.
    pub fn new(connector: Connector, timeout: Duration) -> Client {
        Client { connector, connection: None, timeout }
    }

    /// Sends `req` within the timeout, (re)connecting first if needed. After a failure the
    /// connection is dropped: its state is unknown, and hyper closes it on a cancelled request.
    pub async fn send(&mut self, req: Request<Body>) -> Result<Answer, RequestError> {
        let outcome = tokio::time::timeout(self.timeout, async {
            // A connection closed while idle (the server's keep-alive timeout) is replaced
            // silently, as a browser would: that is not an error of the server.
            let mut conn = match self.connection.take() {
                Some(mut c) if !c.is_closed() => {
                    if c.usable().await {
                        c
                    } else {
                        self.connector.connect().await?
                    }
                }
                _ => self.connector.connect().await?,
            };
            let answer = conn.send(req).await?;
            self.connection = Some(conn);
            Ok(answer)
        })
        .await;
        outcome.unwrap_or(Err(RequestError::Timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_are_loopback_and_distinct() {
        assert_eq!(source_ip(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_ip(255), Ipv4Addr::new(127, 1, 1, 0));
        assert_eq!(source_ip(MAX_SOURCE_IPS - 1), Ipv4Addr::new(127, 255, 255, 254));
        assert_eq!(source_ip(MAX_SOURCE_IPS), source_ip(0), "wraps instead of leaving 127/8");
        let mut seen = std::collections::HashSet::new();
        for i in 0..70_000 {
            let ip = source_ip(i);
            assert!(ip.is_loopback() && ip != Ipv4Addr::LOCALHOST);
            assert!(seen.insert(ip));
        }
    }
}
