//! Standby checks: every region's `health_url` (http/https: 200 is healthy; tcp: a connection
//! is) and every `network.reference` target, probed concurrently on the `[region_checks]`
//! cadence, each within its timeout. The results go to the daemon loop over a channel, one
//! batch per round; what they mean is the policy's business.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::net::{self, TlsSettings};
use super::probe::{ErrorKind, HttpProbe, Probe, ProbeError};
use crate::config::{Config, ConfigError, duration_text};
use crate::kernel::region::Target;
use crate::kernel::standby::Subject;

/// One check's result.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub subject: Subject,
    pub result: Result<(), ProbeError>,
    pub latency: Duration,
}

/// How one target is checked.
enum Checker {
    Http(HttpProbe),
    Tcp {
        host: String,
        port: u16,
        timeout: Duration,
    },
}

impl Checker {
    async fn check(&self) -> (Result<(), ProbeError>, Duration) {
        match self {
            Checker::Http(probe) => {
                let report = probe.probe().await;
                (report.result.map(|_| ()), report.latency)
            }
            Checker::Tcp {
                host,
                port,
                timeout,
            } => {
                let started = Instant::now();
                let result =
                    match tokio::time::timeout(*timeout, net::connect_tcp(host, *port, &|_| {}))
                        .await
                    {
                        Ok(Ok(_stream)) => Ok(()),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(ProbeError::new(
                            ErrorKind::Timeout,
                            format!("no connection within {}", duration_text(*timeout)),
                        )),
                    };
                (result, started.elapsed())
            }
        }
    }
}

/// The standby checks of a config: its targets and cadence.
pub struct Checks {
    targets: Vec<(Subject, Arc<Checker>)>,
    interval: Duration,
}

/// The TLS settings of checks and downloads: the system roots, and the probe's CA as well.
pub fn tls(config: &Config) -> TlsSettings {
    TlsSettings {
        ca_cert: config.probe.ca_cert.clone(),
        insecure: false,
        system_roots: true,
        server_name: None,
    }
}

impl Checks {
    /// The checks `config` asks for; `None` when there is nothing to check.
    pub fn from_config(config: &Config) -> Result<Option<Checks>, ConfigError> {
        let timeout = config.region_checks.timeout;
        let tls = tls(config);
        let regions = config.regions.iter().enumerate().filter_map(|(i, r)| {
            r.health_url.as_ref().map(|t| {
                (
                    Subject::Region(i),
                    t,
                    format!("regions.{}.health_url", r.name),
                )
            })
        });
        let references = config
            .network
            .reference
            .iter()
            .enumerate()
            .map(|(i, t)| (Subject::Reference(i), t, format!("network.reference[{i}]")));
        let mut targets = Vec::new();
        for (subject, target, key) in regions.chain(references) {
            let checker = match target {
                Target::Http(url) => Checker::Http(
                    HttpProbe::new(url.clone(), Vec::new(), timeout, &tls)
                        .map_err(|e| ConfigError::new(key, e))?,
                ),
                Target::Tcp { host, port } => Checker::Tcp {
                    host: host.clone(),
                    port: *port,
                    timeout,
                },
            };
            targets.push((subject, Arc::new(checker)));
        }
        Ok((!targets.is_empty()).then_some(Checks {
            targets,
            interval: config.region_checks.interval,
        }))
    }

    /// Checks every target once, concurrently; results in the order of the targets.
    pub async fn round(&self) -> Vec<CheckReport> {
        let mut set = JoinSet::new();
        for (k, (subject, checker)) in self.targets.iter().enumerate() {
            let (subject, checker) = (*subject, Arc::clone(checker));
            set.spawn(async move {
                let (result, latency) = checker.check().await;
                (
                    k,
                    CheckReport {
                        subject,
                        result,
                        latency,
                    },
                )
            });
        }
        let mut reports: Vec<(usize, CheckReport)> = set.join_all().await;
        reports.sort_by_key(|(k, _)| *k);
        reports.into_iter().map(|(_, r)| r).collect()
    }

    /// Runs a round every interval until `cancel` fires or the receiver is gone.
    pub fn spawn(self, cancel: CancellationToken) -> mpsc::Receiver<Vec<CheckReport>> {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let batch = tokio::select! {
                    _ = cancel.cancelled() => break,
                    b = self.round() => b,
                };
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        crate::testing::config_with_file(toml, &[])
    }

    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_round_checks_http_and_tcp_targets_and_references() {
        let up = crate::adapters::http::test_http::serve("200 OK", 0).await;
        let sick = crate::adapters::http::test_http::serve("503 Service Unavailable", 0).await;
        let closed = closed_port();
        let c = config(&format!(
            "[[regions]]\nname = \"A\"\ncloud = \"a\"\nhealth_url = \"http://127.0.0.1:{up}/health\"\n\
             [[regions]]\nname = \"B\"\ncloud = \"b\"\nhealth_url = \"http://127.0.0.1:{sick}/\"\n\
             [[regions]]\nname = \"C\"\ncloud = \"c\"\nhealth_url = \"tcp://127.0.0.1:{up}\"\n\
             [[regions]]\nname = \"D\"\ncloud = \"d\"\n\
             [network]\nreference = [\"tcp://127.0.0.1:{closed}\"]\n\
             [region_checks]\ntimeout = \"2s\"\n"
        ));
        let checks = Checks::from_config(&c).unwrap().unwrap();
        let round = checks.round().await;
        let got: Vec<(Subject, Option<ErrorKind>)> = round
            .iter()
            .map(|r| (r.subject, r.result.as_ref().err().map(|e| e.kind)))
            .collect();
        assert_eq!(
            got,
            [
                (Subject::Region(0), None),
                (Subject::Region(1), Some(ErrorKind::Status)),
                (Subject::Region(2), None),
                (Subject::Reference(0), Some(ErrorKind::Refused)),
            ]
        );
    }

    #[tokio::test]
    async fn nothing_to_check_without_health_urls_or_references() {
        let c = config("[[regions]]\nname = \"A\"\ncloud = \"a\"\n");
        assert!(Checks::from_config(&c).unwrap().is_none());
    }

    #[tokio::test]
    async fn spawned_checks_send_a_batch_per_round_and_stop_on_cancel() {
        let up = crate::adapters::http::test_http::serve("200 OK", 0).await;
        let c = config(&format!(
            "[[regions]]\nname = \"A\"\ncloud = \"a\"\nhealth_url = \"tcp://127.0.0.1:{up}\"\n\
             [region_checks]\ninterval = \"50ms\"\ntimeout = \"1s\"\n"
        ));
        let cancel = CancellationToken::new();
        let mut rx = Checks::from_config(&c)
            .unwrap()
            .unwrap()
            .spawn(cancel.clone());
        for _ in 0..3 {
            let batch = rx.recv().await.unwrap();
            assert_eq!(batch.len(), 1);
            assert!(batch[0].result.is_ok(), "{batch:?}");
        }
        cancel.cancel();
        while rx.recv().await.is_some() {}
    }
}
