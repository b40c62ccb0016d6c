//! One process per host name: a handler claims `hosts/<host>` with a key bound to its lease
//! that holds a random instance id. A second process with the same name is refused at start
//! (exit 2); a handler restarted after a crash waits out its former self's lease.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::adapters::etcd::EtcdError;
use crate::adapters::files::runs_this_binary;
use crate::config::ConfigError;
use crate::config::fleet::hostname;
use crate::daemon::fleet::Fleet;
use crate::report::event::Event;
use crate::report::logging;

/// How often a starting handler looks again at a name held by another process.
const RECHECK: Duration = Duration::from_millis(500);

impl Fleet {
    /// What this process writes into `hosts/<host>`.
    fn claim_value(&self) -> Value {
        json!({
            "instance": self.instance,
            "pid": std::process::id(),
            "hostname": hostname().unwrap_or_default(),
        })
    }

    /// Claims this host's name on the current lease: `None` when it is this process's, else
    /// who holds it.
    pub(super) async fn claim(&mut self) -> Result<Option<String>, EtcdError> {
        Ok(self.claim_held().await?.map(|held| describe(&held)))
    }

    /// As `claim`, with what the holder wrote.
    async fn claim_held(&mut self) -> Result<Option<Value>, EtcdError> {
        let lease = self.lease().await?;
        if self.claimed == Some(lease) {
            return Ok(None);
        }
        let host = self.settings.host.clone();
        match self
            .store
            .claim_host(&host, &self.claim_value(), lease)
            .await?
        {
            None => {
                self.claimed = Some(lease);
                Ok(None)
            }
            Some(other) => Ok(Some(other)),
        }
    }

    /// At start: takes this host's name in the fleet. A name still held once a full lease
    /// has passed is another live process's: a usage error naming it. A store that does not
    /// answer is no error here (the daemon starts and claims the name when it answers).
    /// The holder may be this handler's former self, killed on this machine: its lease lives
    /// on until it expires, and longer when etcd elects a leader meanwhile (a new leader
    /// renews every lease), so the wait for a dead holder has no deadline.
    pub async fn join(&mut self) -> Result<(), ConfigError> {
        let deadline = Instant::now() + self.settings.lease_ttl + Duration::from_secs(1);
        let mut said = false;
        loop {
            let held = match self.claim_held().await {
                Ok(None) | Err(_) => return Ok(()),
                Ok(Some(held)) => held,
            };
            let other = describe(&held);
            let host = &self.settings.host;
            if Instant::now() >= deadline && !dead_here(&held) {
                return Err(ConfigError::new(
                    "fleet.host",
                    format!(
                        "the host name {host} is already taken in fleet {} by another running handler ({other}); give each handler its own fleet.host",
                        self.settings.name
                    ),
                ));
            }
            if !said {
                said = true;
                // Said before the daemon's services start: to the log only.
                logging::event(&Event::FleetHostTaken {
                    host: host.clone(),
                    holder: other,
                    wait: self.settings.lease_ttl,
                    former: dead_here(&held),
                });
            }
            tokio::time::sleep(RECHECK).await;
        }
    }
}

/// Whether the holder of a name was a process of this machine that no longer runs this
/// binary: a handler killed here, whose lease has not expired yet.
fn dead_here(held: &Value) -> bool {
    let here = hostname().unwrap_or_default();
    let on_this_machine = held["hostname"]
        .as_str()
        .is_some_and(|h| !h.is_empty() && h == here);
    let pid = held["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    on_this_machine && pid.is_some_and(|pid| pid != std::process::id() && !runs_this_binary(pid))
}

/// Who holds a name, in words: `pid 412 on web-3, instance 5f0c…`.
fn describe(held: &Value) -> String {
    let pid = held["pid"].as_u64().map(|p| format!("pid {p}"));
    let on = held["hostname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(|h| format!("on {h}"));
    let instance = held["instance"].as_str().map(|i| format!("instance {i}"));
    let words: Vec<String> = [pid, on, instance].into_iter().flatten().collect();
    if words.is_empty() {
        "a handler that left no details".to_string()
    } else {
        words.join(" ").replacen(" instance", ", instance", 1)
    }
}

/// A random id for this process (16 bytes of the TLS stack's random source, in hex).
pub(super) fn new_instance() -> String {
    let mut bytes = [0u8; 16];
    let random = rustls::crypto::ring::default_provider().secure_random;
    if random.fill(&mut bytes).is_err() {
        // Never seen; the pid and the clock still tell two processes apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("{:x}-{nanos:x}", std::process::id());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
