//! Fresh HTTP/1.1 connections over TCP or TLS, phase by phase (resolve, connect, TLS, request),
//! so that a failure says where it happened. Every HTTP user (probe, standby checks, Datadog)
//! goes through here; no connection is pooled, because a health check tests the path.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::Url;

use super::error::{ErrorKind, ProbeError};
pub use super::tls::TlsSettings;
use super::tls::client_config;

/// Bytes written and read on the connections of one connector, for the wire-cost figures.
#[derive(Debug, Default)]
pub struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    /// The earliest `notAfter` (Unix seconds) of the last TLS chain seen; 0 for none.
    not_after: std::sync::atomic::AtomicI64,
}

impl Counters {
    /// Returns and resets (sent, received).
    pub fn take(&self) -> (u64, u64) {
        (
            self.sent.swap(0, Ordering::Relaxed),
            self.received.swap(0, Ordering::Relaxed),
        )
    }

    /// Returns and resets the earliest `notAfter` of the last TLS chain seen (Unix seconds).
    pub fn take_not_after(&self) -> Option<i64> {
        Some(self.not_after.swap(0, Ordering::Relaxed)).filter(|t| *t != 0)
    }
}

/// Opens connections to one URL's host and port.
#[derive(Clone)]
pub struct Connector {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    host_header: String,
    counters: Arc<Counters>,
}

impl Connector {
    pub fn new(url: &Url, tls: &TlsSettings) -> Result<Self, String> {
        let host = url
            .host_str()
            .ok_or_else(|| format!("{url} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{url} has no port"))?;
        let tls = match url.scheme() {
            "https" => {
                let config = client_config(tls)?;
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| format!("'{host}' is not a TLS server name: {e}"))?;
                Some((TlsConnector::from(config), name))
            }
            "http" => None,
            other => return Err(format!("unsupported scheme '{other}'")),
        };
        let host_header = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
            None => url.host_str().unwrap_or(&host).to_string(),
        };
        Ok(Connector {
            host,
            port,
            tls,
            host_header,
            counters: Arc::new(Counters::default()),
        })
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    pub fn host_header(&self) -> &str {
        &self.host_header
    }

    /// The request target for `url`: its path and query.
    pub fn path_and_query(&self, url: &Url) -> String {
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Resolves, connects, handshakes TLS and HTTP/1.1; `phase` hears where it is. `B` is the
    /// request body type: empty for probes, a full buffer for uploads.
    pub async fn connect<B>(
        &self,
        phase: &(dyn Fn(&'static str) + Sync),
    ) -> Result<SendRequest<B>, ProbeError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.connect_as(None, phase).await
    }

    /// As `connect`, but sends `name` as SNI and verifies the certificate against it instead
    /// of the URL's host (`--tls-server-name`); `None` keeps the URL's host.
    pub async fn connect_as<B>(
        &self,
        name: Option<ServerName<'static>>,
        phase: &(dyn Fn(&'static str) + Sync),
    ) -> Result<SendRequest<B>, ProbeError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        phase("resolving");
        let tcp = connect_tcp(&self.host, self.port, phase).await?;
        let _ = tcp.set_nodelay(true);
        let counted = Counted {
            inner: tcp,
            counters: self.counters.clone(),
        };
        match &self.tls {
            None => handshake(counted, phase).await,
            Some((connector, url_name)) => {
                phase("in the TLS handshake");
                let stream = connector
                    .connect(name.unwrap_or_else(|| url_name.clone()), counted)
                    .await
                    .map_err(|e| classify_io(&e, ErrorKind::Tls))?;
                let chain = stream.get_ref().1.peer_certificates().unwrap_or_default();
                if let Some(t) = crate::adapters::http::x509::earliest_not_after(chain) {
                    self.counters.not_after.store(t, Ordering::Relaxed);
                }
                handshake(stream, phase).await
            }
        }
    }
}

/// `localhost`: loopback by definition (RFC 6761 section 6.3), as `probe::is_loopback` takes it.
fn is_localhost(host: &str) -> bool {
    host.trim_end_matches('.').eq_ignore_ascii_case("localhost")
}

/// Resolves `host` and connects to the first address that accepts.
pub async fn connect_tcp(
    host: &str,
    port: u16,
    phase: &(dyn Fn(&'static str) + Sync),
) -> Result<TcpStream, ProbeError> {
    let addrs: Vec<std::net::SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
        // `localhost` is loopback (RFC 6761): no resolver, and no thread to run one in.
        Err(_) if is_localhost(host) => [
            std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ]
        .map(|ip| std::net::SocketAddr::new(ip, port))
        .to_vec(),
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| {
                let said = e.to_string();
                let said = said
                    .strip_prefix("failed to lookup address information: ")
                    .unwrap_or(&said);
                ProbeError::new(
                    ErrorKind::Dns,
                    format!("cannot resolve {host}: {}", in_words(said)),
                )
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(ProbeError::new(
            ErrorKind::Dns,
            format!("{host} has no address"),
        ));
    }
    phase("connecting");
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(classify_io(&e, ErrorKind::Io)),
        }
    }
    Err(last.unwrap_or_else(|| ProbeError::new(ErrorKind::Io, "no address to connect to")))
}

async fn handshake<S, B>(
    stream: S,
    phase: &(dyn Fn(&'static str) + Sync),
) -> Result<SendRequest<B>, ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    phase("sending the request");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| classify_hyper(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Classifies an I/O error; `fallback` is the kind for errors that say nothing more precise.
pub fn classify_io(e: &io::Error, fallback: ErrorKind) -> ProbeError {
    use io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        K::TimedOut => ErrorKind::Timeout,
        _ if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => ErrorKind::Tls,
        K::InvalidData if fallback == ErrorKind::Tls => ErrorKind::Tls,
        _ => fallback,
    };
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let detail = match (kind, tls, e.kind()) {
        (_, Some(tls), _) => crate::adapters::http::tls::describe(tls),
        (ErrorKind::Refused, ..) => "connection refused".to_string(),
        (ErrorKind::Reset, _, K::ConnectionReset) => "connection reset by the peer".to_string(),
        (ErrorKind::Reset, _, K::ConnectionAborted) => "connection aborted".to_string(),
        (ErrorKind::Reset, ..) => format!(
            "connection closed by the peer ({})",
            in_words(&e.to_string())
        ),
        _ => in_words(&e.to_string()),
    };
    ProbeError::new(kind, detail)
}

/// What the system said, as words in a sentence: "Connection refused (os error 111)" becomes
/// "connection refused".
fn in_words(said: &str) -> String {
    let said = match said.rfind(" (os error ") {
        Some(i) if said.ends_with(')') => &said[..i],
        _ => said,
    };
    let mut chars = said.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => said.to_string(),
    }
}

/// Classifies an HTTP-level error by walking its causes down to the I/O error, if any.
pub fn classify_hyper(e: &hyper::Error) -> ProbeError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return classify_io(io, ErrorKind::Io);
        }
        source = s.source();
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        ProbeError::new(
            ErrorKind::Reset,
            format!("connection closed before a full response ({e})"),
        )
    } else if e.is_parse() || e.is_parse_status() {
        ProbeError::new(
            ErrorKind::Protocol,
            format!("not a valid HTTP response ({e})"),
        )
    } else {
        ProbeError::new(ErrorKind::Io, e.to_string())
    }
}

/// A stream that counts the bytes through it.
struct Counted<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before) as u64;
        this.counters.received.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
