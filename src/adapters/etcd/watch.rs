//! The gateway's watch stream (`POST /v3/watch`): one long-lived request on a connection of
//! its own, whose answer is a stream of JSON messages, `{"result":{...}}` each, with the
//! changes of the watched keys in the order the store made them. It asks the member to end
//! the stream when the member loses its leader, so that a stream that stays up is one of a
//! member of the cluster's quorum.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::wire::{self, MAX_ANSWER, Sender};
use super::{Etcd, EtcdError, Kv, b64, int, kv, prefix_end};

/// The gateway's name of the gRPC metadata that ends a stream whose member has no leader.
const REQUIRE_LEADER: (&str, &str) = ("grpc-metadata-hasleader", "true");

/// One change of a watched key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    Put(Kv),
    Delete { key: String, revision: i64 },
}

impl Change {
    /// The store's revision that made the change.
    pub(super) fn revision(&self) -> i64 {
        match self {
            Change::Put(kv) => kv.mod_revision,
            Change::Delete { revision, .. } => *revision,
        }
    }
}

/// A watch the store has created.
pub(super) struct Watch {
    body: Incoming,
    buf: Vec<u8>,
    /// The connection's handle: the connection lives as long as the watch.
    _sender: Sender,
}

impl Etcd {
    /// Watches every key under `prefix` from revision `start`, on the endpoints in turn from
    /// the last one that answered; the watch once the store said it created it.
    pub(super) async fn watch(&self, prefix: &str, start: i64) -> Result<Watch, EtcdError> {
        let body = json!({ "create_request": {
            "key": b64(prefix),
            "range_end": b64(&prefix_end(prefix)),
            "start_revision": start.to_string(),
        }});
        let n = self.endpoints.len();
        let first = self.current.load(std::sync::atomic::Ordering::Relaxed) % n.max(1);
        let mut errors = Vec::new();
        for k in 0..n {
            let i = (first + k) % n;
            if let Err(e) = self.prove(i).await {
                errors.push(format!("{}: {e}", self.endpoints[i].url));
                continue;
            }
            let token = self.token.lock().ok().and_then(|t| t.clone());
            let open = open(&self.endpoints[i], &body, token);
            match tokio::time::timeout(self.timeout, open).await {
                Ok(Ok(watch)) => return Ok(watch),
                Ok(Err(e)) => errors.push(format!("{}: {e}", self.endpoints[i].url)),
                Err(_) => errors.push(format!(
                    "{}: no watch within {:?}",
                    self.endpoints[i].url, self.timeout
                )),
            }
        }
        Err(EtcdError::Unreachable(errors.join("; ")))
    }
}

async fn open(
    endpoint: &wire::Endpoint,
    body: &Value,
    token: Option<String>,
) -> Result<Watch, String> {
    let mut sender = wire::connect(endpoint).await?;
    let request = wire::request(endpoint, "/v3/watch", body, token, &[REQUIRE_LEADER])?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let mut watch = Watch {
        body: response.into_body(),
        buf: Vec::new(),
        _sender: sender,
    };
    let first = watch.message().await?;
    let first = wire::answer(status, first)?;
    if first["result"]["created"].as_bool() != Some(true) {
        return Err(format!("the store did not create the watch: {first}"));
    }
    Ok(watch)
}

impl Watch {
    /// The next changes the store sends; an error when the stream ends or breaks, or the
    /// store ends the watch (its start was compacted, the member lost its leader).
    pub(super) async fn next(&mut self) -> Result<Vec<Change>, String> {
        let message = self.message().await?;
        changes(&message)
    }

    /// The next whole JSON message of the stream.
    async fn message(&mut self) -> Result<Value, String> {
        loop {
            let mut values = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
            match values.next() {
                Some(Ok(v)) => {
                    let used = values.byte_offset();
                    self.buf.drain(..used);
                    return Ok(v);
                }
                Some(Err(e)) if !e.is_eof() => return Err(format!("the watch stream: {e}")),
                _ => {}
            }
            let frame = self
                .body
                .frame()
                .await
                .ok_or("the store ended the watch stream")?
                .map_err(|e| e.to_string())?;
            if let Ok(data) = frame.into_data() {
                if self.buf.len() + data.len() > MAX_ANSWER {
                    return Err("a watch message larger than 1 MiB".to_string());
                }
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

/// The changes of one message of the stream, or why the stream is over.
fn changes(message: &Value) -> Result<Vec<Change>, String> {
    if let Some(error) = message.get("error") {
        let words = error["message"].as_str().unwrap_or_default();
        return Err(format!("the store ended the watch: {words}"));
    }
    let result = &message["result"];
    let compacted = int(&result["compact_revision"]);
    if compacted != 0 {
        return Err(format!(
            "the store compacted the watched revisions (up to {compacted})"
        ));
    }
    if result["canceled"].as_bool() == Some(true) {
        let reason = result["cancel_reason"].as_str().unwrap_or_default();
        return Err(format!("the store canceled the watch: {reason}"));
    }
    let events = result["events"].as_array().map_or(&[][..], Vec::as_slice);
    events
        .iter()
        .map(|e| {
            let kv = kv(&e["kv"]).map_err(|e| e.to_string())?;
            Ok(match e["type"].as_str() {
                Some("DELETE") => Change::Delete {
                    key: kv.key,
                    revision: kv.mod_revision,
                },
                _ => Change::Put(kv),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_gives_its_changes_in_order() {
        let m = json!({"result": {"header": {"revision": "4"}, "events": [
            {"kv": {"key": b64("/p/a"), "value": b64("1"), "create_revision": "4", "mod_revision": "4"}},
            {"type": "DELETE", "kv": {"key": b64("/p/b"), "mod_revision": "4"}},
        ]}});
        let changes = changes(&m).unwrap();
        assert_eq!(changes.len(), 2);
        assert!(matches!(&changes[0], Change::Put(kv) if kv.key == "/p/a" && kv.value == "1"));
        assert_eq!(
            changes[1],
            Change::Delete {
                key: "/p/b".into(),
                revision: 4
            }
        );
        assert_eq!(changes[1].revision(), 4);
        let created = json!({"result": {"header": {"revision": "3"}, "created": true}});
        assert_eq!(super::changes(&created), Ok(Vec::new()));
    }

    #[test]
    fn compaction_cancellation_and_errors_end_the_watch() {
        let compacted = json!({"result": {"compact_revision": "9", "canceled": true}});
        assert!(changes(&compacted).unwrap_err().contains("compacted"));
        let canceled = json!({"result": {"canceled": true, "cancel_reason": "no leader"}});
        assert!(changes(&canceled).unwrap_err().contains("no leader"));
        let error = json!({"error": {"grpc_code": 14, "message": "etcdserver: no leader"}});
        assert!(changes(&error).unwrap_err().contains("no leader"));
    }
}
