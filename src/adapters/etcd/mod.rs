//! An etcd v3 client over its JSON gateway (`POST /v3/kv/range` and friends, keys and values
//! in base64) on the HTTP/1.1 stack the tree already has: building needs nothing but Rust.
//! Each call tries the endpoints in turn, starting from the last one that answered, each
//! within one deadline; a call fails only when every endpoint failed. Calls go over one kept
//! connection per endpoint; a [`Mirror`] follows a prefix through one more, the watch stream.
//! The fleet's keys in it, and what they hold, are `fleet_store`'s.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use thiserror::Error;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::config::fleet::{ETCD_PASSWORD_VAR, ETCD_USER_VAR, FleetSettings};
use crate::config::{ConfigError, Secret};

mod auth;
pub mod fleet_store;
mod json;
mod mirror;
mod watch;
mod wire;
use auth::{Refusal, needs_token};
pub use fleet_store::{Snapshot, Store};
use json::{b64, int, kv, prefix_end, put_body};
pub use mirror::Mirror;
use wire::{Endpoint, Sender};

/// Why a call failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EtcdError {
    /// No endpoint answered in time (the store is gone, or has lost its own quorum).
    #[error("no etcd endpoint answered: {0}")]
    Unreachable(String),
    /// An answer that is not what the gateway sends.
    #[error("etcd answered something unexpected: {0}")]
    Protocol(String),
    /// etcd refused the user name or password (its own words); asked again only after a
    /// backoff.
    #[error("etcd refused the user name or password ({ETCD_USER_VAR} / {ETCD_PASSWORD_VAR}): {0}")]
    AuthRefused(String),
    /// The store answered that a lease is unknown (it expired): the store is there, the
    /// lease is to be granted anew.
    #[error("etcd no longer knows the lease: {0}")]
    LeaseNotFound(String),
}

/// One key as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: String,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

/// A condition of a transaction.
#[derive(Debug, Clone)]
pub enum Compare {
    /// The key's create revision (0: the key is absent).
    Created(String, i64),
    /// The key's last modification revision (0: the key is absent).
    Modified(String, i64),
}

/// A write of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        key: String,
        value: String,
        lease: i64,
    },
    Delete(String),
}

/// A client of one etcd cluster.
pub struct Etcd {
    endpoints: Vec<Endpoint>,
    /// The kept connection to each endpoint, one call at a time.
    conns: Vec<tokio::sync::Mutex<Option<Sender>>>,
    /// Whether each endpoint has proved to be an etcd member (its status names a cluster).
    proved: Vec<AtomicBool>,
    /// The endpoint that answered last: tried first.
    current: AtomicUsize,
    timeout: Duration,
    credentials: Option<(String, Secret)>,
    token: Mutex<Option<String>>,
    /// The last refusal of the credentials: until when no new attempt is made, its words,
    /// and the backoff that set it.
    refused: Mutex<Option<Refusal>>,
    /// When the store last answered a call; `None` once a call found no endpoint answering.
    answered: Mutex<Option<Instant>>,
    /// How long an answer vouches for the store: a third of the lease (the keep-alives'
    /// period) and one deadline.
    fresh: Duration,
    /// The revision of the last write this client made: a [`Mirror`] shows it before
    /// anything else.
    written: AtomicI64,
}

impl Etcd {
    /// A client for `settings`' endpoints; a TLS file that cannot be used is a config error.
    pub fn new(settings: &FleetSettings) -> Result<Etcd, ConfigError> {
        let tls = if settings.endpoints.iter().any(|u| u.scheme() == "https") {
            Some(wire::tls_config(settings).map_err(|e| ConfigError::new("fleet", e))?)
        } else {
            None
        };
        let mut endpoints = Vec::new();
        for url in &settings.endpoints {
            let host = url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = url.port_or_known_default().unwrap_or(2379);
            let tls = match (&tls, url.scheme()) {
                (Some(config), "https") => {
                    let name = ServerName::try_from(host.clone())
                        .map_err(|e| ConfigError::new("fleet.endpoints", format!("{url}: {e}")))?;
                    Some((TlsConnector::from(config.clone()), name))
                }
                _ => None,
            };
            endpoints.push(Endpoint {
                url: url.clone(),
                host,
                port,
                tls,
            });
        }
        Ok(Etcd {
            conns: endpoints.iter().map(|_| Default::default()).collect(),
            answered: Mutex::new(None),
            fresh: settings.lease_ttl / 3 + settings.request_timeout(),
            written: AtomicI64::new(0),
            proved: endpoints.iter().map(|_| AtomicBool::new(false)).collect(),
            endpoints,
            current: AtomicUsize::new(0),
            timeout: settings.request_timeout(),
            credentials: settings.user.clone().zip(settings.password.clone()),
            token: Mutex::new(None),
            refused: Mutex::new(None),
        })
    }

    /// Every key under `prefix`, and the store's revision when read.
    pub async fn range_prefix(&self, prefix: &str) -> Result<(Vec<Kv>, i64), EtcdError> {
        let answer = self
            .call(
                "/v3/kv/range",
                json!({ "key": b64(prefix), "range_end": b64(&prefix_end(prefix)) }),
            )
            .await?;
        let kvs = answer["kvs"]
            .as_array()
            .map(|a| a.iter().map(kv).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default();
        Ok((kvs, int(&answer["header"]["revision"])))
    }

    /// One key, if present.
    pub async fn get(&self, key: &str) -> Result<Option<Kv>, EtcdError> {
        let answer = self
            .call("/v3/kv/range", json!({ "key": b64(key) }))
            .await?;
        match answer["kvs"].as_array().and_then(|a| a.first()) {
            Some(v) => Ok(Some(kv(v)?)),
            None => Ok(None),
        }
    }

    /// Writes `key` (bound to `lease` unless it is 0).
    pub async fn put(&self, key: &str, value: &str, lease: i64) -> Result<(), EtcdError> {
        let answer = self.call("/v3/kv/put", put_body(key, value, lease)).await?;
        self.wrote(&answer);
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<(), EtcdError> {
        let answer = self
            .call("/v3/kv/deleterange", json!({ "key": b64(key) }))
            .await?;
        if int(&answer["deleted"]) > 0 {
            self.wrote(&answer);
        }
        Ok(())
    }

    /// Applies `ops` if every comparison holds; says whether it did.
    pub async fn txn(&self, compare: &[Compare], ops: &[Op]) -> Result<bool, EtcdError> {
        let compare: Vec<Value> = compare
            .iter()
            .map(|c| match c {
                Compare::Created(k, rev) => json!({"key": b64(k), "target": "CREATE", "result": "EQUAL", "create_revision": rev.to_string()}),
                Compare::Modified(k, rev) => json!({"key": b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string()}),
            })
            .collect();
        let success: Vec<Value> = ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value, lease } => {
                    json!({ "request_put": put_body(key, value, *lease) })
                }
                Op::Delete(key) => json!({ "request_delete_range": { "key": b64(key) } }),
            })
            .collect();
        let answer = self
            .call(
                "/v3/kv/txn",
                json!({ "compare": compare, "success": success }),
            )
            .await?;
        let succeeded = answer["succeeded"].as_bool().unwrap_or(false);
        if succeeded && !ops.is_empty() {
            self.wrote(&answer);
        }
        Ok(succeeded)
    }

    /// Notes the revision of a write this client made.
    fn wrote(&self, answer: &Value) {
        self.written
            .fetch_max(int(&answer["header"]["revision"]), Ordering::Relaxed);
    }

    /// Whether the store answered the last call, within the last `fresh`.
    fn answered_lately(&self) -> bool {
        self.answered
            .lock()
            .ok()
            .and_then(|a| *a)
            .is_some_and(|at| at.elapsed() <= self.fresh)
    }

    fn note_answer(&self, answered: bool) {
        if let Ok(mut at) = self.answered.lock() {
            *at = answered.then(Instant::now);
        }
    }

    /// A new lease of `ttl`; its id.
    pub async fn grant(&self, ttl: Duration) -> Result<i64, EtcdError> {
        let answer = self
            .call(
                "/v3/lease/grant",
                json!({ "TTL": ttl.as_secs().max(1).to_string() }),
            )
            .await?;
        match int(&answer["ID"]) {
            0 => Err(EtcdError::Protocol(format!(
                "lease grant without an ID: {answer}"
            ))),
            id => Ok(id),
        }
    }

    /// Renews `lease`; false when the store no longer knows it (it expired).
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, EtcdError> {
        let answer = self
            .call("/v3/lease/keepalive", json!({ "ID": lease.to_string() }))
            .await?;
        Ok(int(&answer["result"]["TTL"]) > 0)
    }

    /// Ends `lease` now: its keys go at once (a clean stop).
    pub async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.call("/v3/lease/revoke", json!({ "ID": lease.to_string() }))
            .await
            .map(drop)
    }

    /// POSTs `body` to `path`, trying each endpoint in turn from the last good one.
    async fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let n = self.endpoints.len();
        let first = self.current.load(Ordering::Relaxed) % n.max(1);
        let mut errors = Vec::new();
        for k in 0..n {
            let i = (first + k) % n;
            let endpoint = &self.endpoints[i];
            // Nothing (no password above all) goes to an endpoint before it proves to be etcd.
            if let Err(e) = self.prove(i).await {
                errors.push(format!("{}: {e}", endpoint.url));
                continue;
            }
            let unauthenticated = self.token.lock().map(|t| t.is_none()).unwrap_or(true);
            if unauthenticated && self.credentials.is_some() {
                self.authenticate(i).await?;
            }
            let mut result = self.attempt(i, path, &body).await;
            if matches!(&result, Err(e) if needs_token(e)) && self.credentials.is_some() {
                // The token expired (or the member does not know it): authenticate, retry once.
                if self.authenticate(i).await? {
                    result = self.attempt(i, path, &body).await;
                }
            }
            match result {
                Ok(v) => {
                    self.current.store(i, Ordering::Relaxed);
                    self.note_answer(true);
                    return Ok(v);
                }
                // An answer, the same from every member: no other endpoint is tried.
                Err(e) if e.contains("lease not found") => {
                    self.current.store(i, Ordering::Relaxed);
                    self.note_answer(true);
                    return Err(EtcdError::LeaseNotFound(e));
                }
                Err(e) => errors.push(format!("{}: {e}", endpoint.url)),
            }
        }
        self.note_answer(false);
        Err(EtcdError::Unreachable(errors.join("; ")))
    }

    /// One POST to endpoint `i` on its kept connection, within the deadline (waiting for
    /// the connection included).
    async fn attempt(&self, i: usize, path: &str, body: &Value) -> Result<Value, String> {
        let exchange = async {
            let mut conn = self.conns[i].lock().await;
            let token = self.token.lock().ok().and_then(|t| t.clone());
            wire::exchange(&self.endpoints[i], &mut conn, path, body, token).await
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}
