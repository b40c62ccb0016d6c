//! The throughput gate's measurement: one download of `network.throughput_url`, read for at
//! most the probe timeout, run only when a failover is about to happen (the old script ran a
//! blocking speed test every cycle; this never does).

use std::time::Duration;

use http_body_util::BodyExt;
use tokio::time::Instant;
use url::Url;

use super::net::{Connector, classify_hyper};
use super::probe::{ErrorKind, ProbeError};
use crate::config::{Config, ConfigError, duration_text};

/// Past this many bytes the download stops: enough for a figure.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What one download gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Measurement {
    /// Kilobits per second, rounded down.
    pub fn kbps(&self) -> u64 {
        let ms = self.elapsed.as_millis().max(1);
        u64::try_from(u128::from(self.bytes) * 8 / ms).unwrap_or(u64::MAX)
    }

    pub fn mbps(&self) -> f64 {
        self.kbps() as f64 / 1000.0
    }
}

/// Downloads one URL to measure the host's throughput.
pub struct Throughput {
    url: Url,
    connector: Connector,
    limit: Duration,
}

impl Throughput {
    /// The gate's meter, when `network.throughput_url` and a `min_mbps` above zero are set.
    pub fn from_config(config: &Config) -> Result<Option<Throughput>, ConfigError> {
        let Some(url) = config
            .network
            .throughput_url
            .clone()
            .filter(|_| config.network.min_mbps > 0.0)
        else {
            return Ok(None);
        };
        let connector = Connector::new(&url, &crate::adapters::http::checks::tls(config))
            .map_err(|e| ConfigError::new("network.throughput_url", e))?;
        Ok(Some(Throughput {
            url,
            connector,
            limit: config.probe.timeout,
        }))
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Downloads for at most the limit; what arrived by then is the figure. A download that
    /// cannot start (or answers other than 200) is an error.
    pub async fn measure(&self) -> Result<Measurement, ProbeError> {
        let started = Instant::now();
        let deadline = started + self.limit;
        let timeout = || {
            ProbeError::new(
                ErrorKind::Timeout,
                format!("no answer within {}", duration_text(self.limit)),
            )
        };
        let response = tokio::time::timeout_at(deadline, async {
            let mut sender = self.connector.connect(&|_| {}).await?;
            let req = http::Request::get(self.connector.path_and_query(&self.url))
                .header(http::header::HOST, self.connector.host_header())
                .header(
                    http::header::USER_AGENT,
                    concat!("failover-handler/", env!("CARGO_PKG_VERSION")),
                )
                .header(http::header::CONNECTION, "close")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .map_err(|e| ProbeError::new(ErrorKind::Protocol, e.to_string()))?;
            sender
                .send_request(req)
                .await
                .map_err(|e| classify_hyper(&e))
        })
        .await
        .map_err(|_| timeout())??;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(ProbeError {
                kind: ErrorKind::Status,
                detail: format!("HTTP {status}"),
                http_status: Some(status),
            });
        }
        let mut body = response.into_body();
        let mut bytes = 0u64;
        while bytes < MAX_BYTES {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) | Ok(None) => break,
                Ok(Some(Ok(frame))) => bytes += frame.data_ref().map_or(0, |d| d.len() as u64),
                Ok(Some(Err(e))) if bytes == 0 => return Err(classify_hyper(&e)),
                Ok(Some(Err(_))) => break,
            }
        }
        Ok(Measurement {
            bytes,
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        let m = Measurement {
            bytes: 1_250_000,
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(m.kbps(), 10_000);
        assert!((m.mbps() - 10.0).abs() < 1e-9);
        let instant = Measurement {
            bytes: 10,
            elapsed: Duration::ZERO,
        };
        assert_eq!(instant.kbps(), 80);
    }

    fn meter(port: u16) -> Throughput {
        let url = Url::parse(&format!("http://127.0.0.1:{port}/blob")).unwrap();
        Throughput {
            connector: Connector::new(&url, &Default::default()).unwrap(),
            url,
            limit: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn downloads_and_counts_the_bytes() {
        let port = crate::adapters::http::test_http::serve("200 OK", 300_000).await;
        let m = meter(port).measure().await.unwrap();
        assert_eq!(m.bytes, 300_000);
        assert!(m.kbps() > 0, "{m:?}");
    }

    #[tokio::test]
    async fn a_failed_download_is_an_error() {
        let port = crate::adapters::http::test_http::serve("404 Not Found", 3).await;
        let e = meter(port).measure().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Status);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let e = meter(port).measure().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Refused);
    }
}
