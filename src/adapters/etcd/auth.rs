//! Who may talk to the store: each endpoint proves once that it is an etcd member before
//! anything is sent to it, and the credentials get a token; etcd's refusal of them is kept,
//! in its own words, and not asked again before a backoff.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Etcd, EtcdError, int};

#[derive(Debug, Clone)]
pub(super) struct Refusal {
    pub(super) until: Instant,
    pub(super) words: String,
    pub(super) backoff: Duration,
}

/// The first wait after etcd refuses the credentials; it doubles up to `AUTH_BACKOFF_MAX`.
const AUTH_BACKOFF: Duration = Duration::from_secs(1);
const AUTH_BACKOFF_MAX: Duration = Duration::from_secs(60);

impl Etcd {
    /// Checks once that endpoint `i` is an etcd member: its maintenance status names a
    /// cluster id (or it answers in etcd's words). Another JSON service is passed over.
    pub(super) async fn prove(&self, i: usize) -> Result<(), String> {
        if self.proved[i].load(Ordering::Relaxed) {
            return Ok(());
        }
        let etcd = match self.attempt(i, "/v3/maintenance/status", &json!({})).await {
            Ok(answer) => {
                int(&answer["header"]["cluster_id"]) != 0
                    || answer["header"]["cluster_id"]
                        .as_str()
                        .is_some_and(|c| !c.is_empty())
            }
            Err(e) if e.contains("etcdserver:") => true,
            Err(e) => return Err(e),
        };
        if !etcd {
            return Err("not an etcd member: its status names no cluster id".to_string());
        }
        self.proved[i].store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Gets a token from `endpoint`: true when it did; false when the endpoint did not
    /// answer (the next one is tried). A refusal of the credentials is an error in etcd's
    /// own words, and no new attempt is made before a backoff (1 s, doubling to a minute).
    pub(super) async fn authenticate(&self, i: usize) -> Result<bool, EtcdError> {
        let Some((user, password)) = &self.credentials else {
            return Ok(true);
        };
        let last = self.refused.lock().ok().and_then(|r| r.clone());
        if let Some(r) = &last
            && Instant::now() < r.until
        {
            return Err(EtcdError::AuthRefused(r.words.clone()));
        }
        let body = json!({ "name": user, "password": password.expose() });
        match self.attempt(i, "/v3/auth/authenticate", &body).await {
            Ok(answer) => {
                let token = answer["token"].as_str().map(str::to_string);
                if let Ok(mut slot) = self.token.lock() {
                    *slot = token;
                }
                if let Ok(mut refused) = self.refused.lock() {
                    *refused = None;
                }
                Ok(true)
            }
            Err(words) if is_refusal(&words) => {
                let backoff = last.map_or(AUTH_BACKOFF, |r| (r.backoff * 2).min(AUTH_BACKOFF_MAX));
                if let Ok(mut refused) = self.refused.lock() {
                    *refused = Some(Refusal {
                        until: Instant::now() + backoff,
                        words: words.clone(),
                        backoff,
                    });
                }
                Err(EtcdError::AuthRefused(words))
            }
            Err(_) => Ok(false),
        }
    }
}

/// Whether an answer of the gateway refuses the credentials themselves.
fn is_refusal(error: &str) -> bool {
    error.contains("authentication failed") || error.contains("user name not found")
}

/// Whether an error of the gateway asks for a (new) auth token.
pub(super) fn needs_token(error: &str) -> bool {
    error.contains("auth token") || error.contains("user name is empty")
}
