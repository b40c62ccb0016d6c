//! Fresh HTTP/1.1 connections over TCP or TLS, phase by phase (resolve, connect, TLS, request),
//! so that a failure says where it happened. Every HTTP user (probe, standby checks, Datadog)
//! goes through here; no connection is pooled, because a health check tests the path.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::Url;

use crate::adapters::error::{ErrorKind, ProbeError};

/// How to verify the servers we talk to.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Trust only this CA bundle (PEM) instead of the system roots.
    pub ca_cert: Option<PathBuf>,
    /// Skip verification entirely (`--insecure`).
    pub insecure: bool,
    /// Trust the system roots as well as `ca_cert` (standby checks reach public endpoints).
    pub system_roots: bool,
}

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
        phase("resolving");
        let tcp = connect_tcp(&self.host, self.port, phase).await?;
        let _ = tcp.set_nodelay(true);
        let counted = Counted {
            inner: tcp,
            counters: self.counters.clone(),
        };
        match &self.tls {
            None => handshake(counted, phase).await,
            Some((connector, name)) => {
                phase("in the TLS handshake");
                let stream = connector
                    .connect(name.clone(), counted)
                    .await
                    .map_err(|e| classify_io(&e, ErrorKind::Tls))?;
                let chain = stream.get_ref().1.peer_certificates().unwrap_or_default();
                if let Some(t) = crate::adapters::x509::earliest_not_after(chain) {
                    self.counters.not_after.store(t, Ordering::Relaxed);
                }
                handshake(stream, phase).await
            }
        }
    }
}

/// Resolves `host` and connects to the first address that accepts.
pub async fn connect_tcp(
    host: &str,
    port: u16,
    phase: &(dyn Fn(&'static str) + Sync),
) -> Result<TcpStream, ProbeError> {
    let addrs: Vec<std::net::SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ProbeError::new(ErrorKind::Dns, format!("cannot resolve {host}: {e}")))?
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
    let detail = match kind {
        ErrorKind::Reset => format!("connection closed or reset by the peer ({e})"),
        ErrorKind::Refused => format!("connection refused ({e})"),
        _ => e.to_string(),
    };
    ProbeError::new(kind, detail)
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

/// The rustls configuration for `settings` (ring, HTTP/1.1), also used by the Datadog client.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = if settings.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &settings.ca_cert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        format!("{} is not a PEM certificate file: {e}", path.display())
                    })?;
                if certs.is_empty() {
                    return Err(format!("{} holds no PEM certificate", path.display()));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
                }
                if settings.system_roots {
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The verifier behind `--insecure`: accepts any certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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
