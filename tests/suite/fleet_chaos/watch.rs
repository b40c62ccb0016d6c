//! The store's writes as etcd's own watch shows them: one watch of the fleet's prefix from
//! revision 1 on each member, so that a member stopped or killed leaves the others to tell.
//! Each write is kept once, at the earliest moment a watch saw it, with the id of the cluster
//! that made it: after a wipe the new cluster has its own id and its revisions start again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde_json::{Value, json};

/// One write to a key under the prefix: `value` is `None` for a delete.
#[derive(Clone, Debug)]
pub struct StoreWrite {
    pub at: SystemTime,
    pub cluster: String,
    pub revision: i64,
    pub key: String,
    pub value: Option<String>,
}

pub struct Watch {
    writes: Arc<Mutex<Vec<StoreWrite>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Watch {
    /// Watches `prefix` on each member's client port.
    pub fn start(ports: &[u16], prefix: &str) -> Watch {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = ports
            .iter()
            .map(|&port| {
                let (writes, stop, prefix) = (writes.clone(), stop.clone(), prefix.to_owned());
                std::thread::spawn(move || follow(port, &prefix, &writes, &stop))
            })
            .collect();
        Watch {
            writes,
            stop,
            threads,
        }
    }

    /// Every write seen so far, once each, in the order each cluster made them.
    pub fn writes(&self) -> Vec<StoreWrite> {
        let mut all = self.writes.lock().unwrap().clone();
        all.sort_by(|a, b| {
            (&a.cluster, a.revision, &a.key, a.value.is_none(), a.at).cmp(&(
                &b.cluster,
                b.revision,
                &b.key,
                b.value.is_none(),
                b.at,
            ))
        });
        all.dedup_by(|b, a| a.cluster == b.cluster && a.revision == b.revision && a.key == b.key);
        all
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Watches one member until told to stop, again after each broken stream, from the revision
/// after the last one seen (from 1 on a cluster it has not seen).
fn follow(port: u16, prefix: &str, writes: &Mutex<Vec<StoreWrite>>, stop: &AtomicBool) {
    let mut last: Option<(String, i64)> = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some(cluster) = cluster_id(port) {
            let from = match &last {
                Some((c, rev)) if *c == cluster => rev + 1,
                _ => 1,
            };
            let seen = stream(port, prefix, &cluster, from, writes, stop);
            if let Some(rev) = seen {
                last = Some((cluster, rev));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The id of the cluster the member on `port` belongs to, if it answers.
fn cluster_id(port: u16) -> Option<String> {
    let mut s = connect(port)?;
    let body = json!({"key": "eA=="}).to_string();
    s.write_all(request("/v3/kv/range", &body).as_bytes())
        .ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (_, body) = out.split_once("\r\n\r\n")?;
    let v: Value = serde_json::from_str(body.trim()).ok()?;
    v["header"]["cluster_id"].as_str().map(str::to_owned)
}

fn connect(port: u16) -> Option<TcpStream> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    Some(s)
}

fn request(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// One watch stream from `from` on: records its writes, returns the last revision seen.
fn stream(
    port: u16,
    prefix: &str,
    cluster: &str,
    from: i64,
    writes: &Mutex<Vec<StoreWrite>>,
    stop: &AtomicBool,
) -> Option<i64> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut()? += 1;
    let body = json!({"create_request": {
        "key": b64.encode(prefix), "range_end": b64.encode(&end), "start_revision": from
    }})
    .to_string();
    let mut s = connect(port)?;
    s.write_all(request("/v3/watch", &body).as_bytes()).ok()?;
    let mut raw: Vec<u8> = Vec::new();
    let mut head_done = false;
    let mut text: Vec<u8> = Vec::new();
    let mut last = None;
    let mut chunk = [0u8; 16384];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        }
        if !head_done {
            let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if !raw.starts_with(b"HTTP/1.1 200") {
                return last;
            }
            raw.drain(..at + 4);
            head_done = true;
        }
        unchunk(&mut raw, &mut text);
        let mut messages = serde_json::Deserializer::from_slice(&text).into_iter::<Value>();
        let mut used = 0;
        while let Some(Ok(message)) = messages.next() {
            used = messages.byte_offset();
            let result = &message["result"];
            if result["header"]["cluster_id"].as_str() != Some(cluster) {
                return last;
            }
            let at = SystemTime::now();
            for event in result["events"].as_array().into_iter().flatten() {
                let kv = &event["kv"];
                let text = |v: &Value| {
                    String::from_utf8_lossy(&b64.decode(v.as_str().unwrap_or_default()).unwrap())
                        .into_owned()
                };
                let revision = kv["mod_revision"].as_str()?.parse().ok()?;
                let deleted = event["type"] == "DELETE";
                writes.lock().unwrap().push(StoreWrite {
                    at,
                    cluster: cluster.to_owned(),
                    revision,
                    key: text(&kv["key"]),
                    value: (!deleted).then(|| text(&kv["value"])),
                });
                last = Some(revision);
            }
        }
        text.drain(..used);
    }
    last
}

/// Moves the data of every complete chunk from `raw` to `out`.
fn unchunk(raw: &mut Vec<u8>, out: &mut Vec<u8>) {
    loop {
        let Some(line) = raw.windows(2).position(|w| w == b"\r\n") else {
            return;
        };
        let size = std::str::from_utf8(&raw[..line])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if raw.len() < line + 2 + size + 2 {
            return;
        }
        out.extend_from_slice(&raw[line + 2..line + 2 + size]);
        raw.drain(..line + 2 + size + 2);
    }
}
