//! The health probe: one HTTP(S) GET on a fresh connection, within one deadline, with every
//! failure classified (status, timeout, refused, reset, tls, dns, protocol, io) because the
//! logs, the metrics and the policy all need to know which it was.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use rustls::pki_types::ServerName;
use tokio::time::Instant;
use url::Url;

pub use super::error::{ErrorKind, ProbeError};
use super::net::{Connector, TlsSettings};
use crate::config::TLS_NAME_CLOUD as CLOUD;
use crate::kernel::region::Region;

/// Past this many body bytes the probe stops reading: a 200 with headers is the answer, and
/// the body is never buffered.
const MAX_BODY: u64 = 1024 * 1024;

/// One probe's result with its latency and traffic.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub latency: Duration,
    /// The HTTP status (always 200 when Ok).
    pub result: Result<u16, ProbeError>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Where the time went, phase by phase (as blackbox_exporter splits an HTTP probe).
    pub phases: Phases,
    /// The earliest `notAfter` of the certificate chain the server showed (Unix seconds).
    pub cert_not_after: Option<i64>,
}

/// The time of one probe by phase: DNS, TCP connect, TLS handshake, request sent until the
/// response headers (`processing`), and reading the body (`transfer`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    pub resolve: Duration,
    pub connect: Duration,
    pub tls: Duration,
    pub processing: Duration,
    pub transfer: Duration,
}

impl Phases {
    /// The phases by their blackbox_exporter names.
    pub fn named(&self) -> [(&'static str, Duration); 5] {
        [
            ("resolve", self.resolve),
            ("connect", self.connect),
            ("tls", self.tls),
            ("processing", self.processing),
            ("transfer", self.transfer),
        ]
    }

    /// From the instants at which each step (named as the connector names them) began,
    /// and the end of the probe.
    fn from_marks(marks: &[(&'static str, Instant)], end: Instant) -> Phases {
        let mut p = Phases::default();
        for (i, (name, began)) in marks.iter().enumerate() {
            let until = marks.get(i + 1).map_or(end, |m| m.1);
            let took = until.saturating_duration_since(*began);
            let slot = match *name {
                "resolving" => &mut p.resolve,
                "connecting" => &mut p.connect,
                "in the TLS handshake" => &mut p.tls,
                "reading the body" => &mut p.transfer,
                _ => &mut p.processing,
            };
            *slot += took;
        }
        p
    }
}

/// The steps of one probe as they happen: the current one (for a timeout's message) and
/// when each began.
#[derive(Default)]
struct Steps {
    marks: Vec<(&'static str, Instant)>,
}

impl ProbeReport {
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// The seam between the daemon and the network: one real implementation, fakes in tests.
pub trait Probe {
    fn probe(&self) -> impl std::future::Future<Output = ProbeReport> + Send;

    /// Tells the probe which region is active, for what depends on it: the TLS server name
    /// `{cloud}` of `--tls-server-name`. The daemon calls it before every `probe()` (cheap:
    /// no I/O); probes that do not care, such as fakes, ignore it.
    fn set_region(&self, _region: &Region) {}
}

/// Probes one HTTP(S) URL; 200 is healthy, anything else a failure.
#[derive(Clone)]
pub struct HttpProbe {
    url: Url,
    connector: Connector,
    headers: Arc<Vec<(http::HeaderName, http::HeaderValue)>>,
    timeout: Duration,
    /// The TLS server name; shared by the clones of one probe.
    name: Arc<TlsName>,
}

/// `--tls-server-name` and the cloud host that fills its `{cloud}`.
#[derive(Debug, Default)]
struct TlsName {
    /// `{cloud}` not yet filled in; `None`: the URL's host.
    template: Option<String>,
    /// The active region's cloud host.
    cloud: Mutex<Option<String>>,
}

impl HttpProbe {
    pub fn new(
        url: Url,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
        timeout: Duration,
        tls: &TlsSettings,
    ) -> Result<Self, String> {
        let connector = Connector::new(&url, tls)?;
        Ok(HttpProbe {
            url,
            connector,
            headers: Arc::new(headers),
            timeout,
            name: Arc::new(TlsName {
                template: tls.server_name.clone(),
                cloud: Mutex::new(None),
            }),
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// A refusal from a loopback address is the local tunnel's, not the cloud's: `tunnel_down`.
    /// Without `{cloud}` in `--tls-server-name`, the TLS peer of a loopback probe is the tunnel
    /// itself, so a TLS failure is this host's configuration: `tunnel_misconfigured`.
    fn local(&self, e: ProbeError) -> ProbeError {
        if !is_loopback(&self.url) {
            return e;
        }
        let port = self.url.port_or_known_default().unwrap_or(443);
        let host = self.url.host_str().unwrap_or("localhost");
        let forwarded = self
            .name
            .template
            .as_ref()
            .is_some_and(|t| t.contains(CLOUD));
        if e.kind == ErrorKind::Tls && !forwarded {
            return ProbeError::new(
                ErrorKind::TunnelMisconfigured,
                format!(
                    "the local tunnel at {host}:{port} presents a certificate this host cannot verify ({}): pass the tunnel's certificate with --ca-cert (probe.ca_cert), or set --tls-server-name to the name it is issued for",
                    e.detail
                ),
            );
        }
        if e.kind != ErrorKind::Refused {
            return e;
        }
        ProbeError::new(
            ErrorKind::TunnelDown,
            format!("the local tunnel at {host}:{port} refuses connections"),
        )
    }

    /// This probe for `region`: a copy whose `{cloud}` is that region's cloud host, whatever
    /// region the original is later told about.
    pub fn for_region(&self, region: &Region) -> HttpProbe {
        let copy = HttpProbe {
            name: Arc::new(TlsName {
                template: self.name.template.clone(),
                cloud: Mutex::new(None),
            }),
            ..self.clone()
        };
        copy.set_region(region);
        copy
    }

    /// The TLS server name to use now: `--tls-server-name` with `{cloud}` filled in, or `None`
    /// for the URL's host.
    fn tls_name(&self) -> Result<Option<ServerName<'static>>, ProbeError> {
        let Some(template) = &self.name.template else {
            return Ok(None);
        };
        let name = if template.contains(CLOUD) {
            let cloud = self.name.cloud.lock().ok().and_then(|c| c.clone());
            let Some(cloud) = cloud else {
                return Err(ProbeError::new(
                    ErrorKind::Tls,
                    format!(
                        "--tls-server-name '{template}' needs the active region's cloud, and none is known"
                    ),
                ));
            };
            template.replace(CLOUD, &cloud)
        } else {
            template.clone()
        };
        ServerName::try_from(name.clone()).map(Some).map_err(|e| {
            ProbeError::new(
                ErrorKind::Tls,
                format!("'{name}' is not a TLS server name: {e}"),
            )
        })
    }

    async fn exchange(&self, steps: &std::sync::Mutex<Steps>) -> Result<u16, ProbeError> {
        let set = |p| {
            if let Ok(mut g) = steps.lock() {
                g.marks.push((p, Instant::now()));
            }
        };
        let name = self.tls_name()?;
        let mut sender = self.connector.connect_as(name, &set).await?;
        set("waiting for the response");
        let mut req = http::Request::get(self.connector.path_and_query(&self.url))
            .header(http::header::HOST, self.connector.host_header())
            .header(
                http::header::USER_AGENT,
                concat!("failover-handler/", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::CONNECTION, "close");
        for (name, value) in self.headers.iter() {
            req = req.header(name, value);
        }
        let req = req
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| ProbeError::new(ErrorKind::Protocol, e.to_string()))?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| crate::adapters::http::net::classify_hyper(&e))?;
        let status = response.status().as_u16();
        set("reading the body");
        let mut body = response.into_body();
        let mut read = 0u64;
        while read <= MAX_BODY {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                Some(Err(e)) => return Err(crate::adapters::http::net::classify_hyper(&e)),
            }
        }
        if status != 200 {
            return Err(ProbeError {
                kind: ErrorKind::Status,
                detail: format!("HTTP {status}"),
                http_status: Some(status),
            });
        }
        Ok(status)
    }
}

impl Probe for HttpProbe {
    fn set_region(&self, region: &Region) {
        if let Ok(mut cloud) = self.name.cloud.lock() {
            *cloud = Some(region.cloud.clone());
        }
    }

    async fn probe(&self) -> ProbeReport {
        let started = Instant::now();
        let steps = std::sync::Mutex::new(Steps {
            marks: vec![("resolving", started)],
        });
        let counters = self.connector.counters();
        let result = match tokio::time::timeout(self.timeout, self.exchange(&steps)).await {
            Ok(r) => r,
            Err(_) => {
                let during = steps
                    .lock()
                    .ok()
                    .and_then(|g| g.marks.last().map(|m| m.0))
                    .unwrap_or("probing");
                Err(ProbeError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within {} ({during})",
                        crate::config::duration_text(self.timeout)
                    ),
                ))
            }
        };
        let (bytes_sent, bytes_received) = counters.take();
        let end = Instant::now();
        let phases = steps
            .lock()
            .map(|g| Phases::from_marks(&g.marks, end))
            .unwrap_or_default();
        ProbeReport {
            latency: end.saturating_duration_since(started),
            result: result.map_err(|e| self.local(e)),
            bytes_sent,
            bytes_received,
            phases,
            cert_not_after: counters.take_not_after(),
        }
    }
}

/// Whether the URL's host is this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(url: &str) -> HttpProbe {
        HttpProbe::new(
            Url::parse(url).unwrap(),
            vec![],
            Duration::from_secs(2),
            &TlsSettings::default(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn refused_on_loopback_is_the_tunnel_down() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let r = probe(&format!("http://127.0.0.1:{port}/")).probe().await;
        let e = r.result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::TunnelDown);
        assert!(
            e.detail
                .starts_with(&format!("the local tunnel at 127.0.0.1:{port} refuses")),
            "{e}"
        );
    }

    #[test]
    fn loopback_is_localhost_127_8_and_ipv6_one() {
        for (url, local) in [
            ("https://localhost:8443/x", true),
            ("https://127.0.0.1/", true),
            ("https://127.3.2.1:9/", true),
            ("https://[::1]:8443/", true),
            ("https://cloud.eu.ext.com/", false),
            ("https://10.0.0.1/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), local, "{url}");
        }
    }

    #[tokio::test]
    async fn unresolvable_is_dns() {
        let r = probe("http://name-that-does-not-resolve.invalid/")
            .probe()
            .await;
        assert_eq!(r.result.unwrap_err().kind, ErrorKind::Dns);
    }

    #[tokio::test]
    async fn plain_http_statuses_and_bytes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok").as_bytes(),
                    )
                    .await;
            }
        });
        let p = probe(&format!("http://127.0.0.1:{port}/health"));
        let ok = p.probe().await;
        assert_eq!(ok.result, Ok(200));
        let total: Duration = ok.phases.named().iter().map(|(_, d)| *d).sum();
        assert!(total <= ok.latency && total * 2 >= ok.latency, "{ok:?}");
        assert_eq!(ok.phases.tls, Duration::ZERO);
        assert_eq!(ok.cert_not_after, None);
        assert!(ok.bytes_sent > 20 && ok.bytes_received > 20, "{ok:?}");
        let bad = p.probe().await.result.unwrap_err();
        assert_eq!((bad.kind, bad.http_status), (ErrorKind::Status, Some(503)));
    }
}
