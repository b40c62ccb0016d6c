//! A real etcd cluster on 127.0.0.1 for the fleet tests: each member with its own temp data
//! dir, free ports and a cluster token unique to the test, with short heartbeats so that
//! elections take well under a second. Never the system's etcd service.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use super::free_port;

struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A cluster of real etcd members; killed on drop.
pub struct EtcdCluster {
    members: Vec<Member>,
    _dir: tempfile::TempDir,
    scheme: &'static str,
    bin: PathBuf,
    token: String,
    tls: Option<[PathBuf; 3]>,
}

/// The etcd binary, if installed (scripts/test.sh installs Debian's etcd-server).
pub fn etcd_binary() -> Option<PathBuf> {
    super::stack::which(&["etcd"])
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster serves writes. A cluster that does not
    /// serve within 20 s (a member lost a free port to a parallel test between choosing and
    /// binding it) is killed and started again on other ports, twice at most; then the
    /// members' logs are shown.
    pub fn start(n: usize) -> EtcdCluster {
        let mut logs = String::new();
        for _ in 0..3 {
            let cluster = EtcdCluster::launch(n, None);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let serves = (0..n).all(|i| {
                    let body = json!({"key": "aGVsbG8=", "value": "MQ=="});
                    cluster.post(i, "/v3/kv/put", &body).is_some()
                });
                if serves {
                    return cluster;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            for m in &cluster.members {
                let log =
                    std::fs::read_to_string(cluster._dir.path().join(format!("{}.log", m.name)))
                        .unwrap_or_default();
                logs.push_str(&format!(
                    "--- {} (client {}, peer {})\n{log}\n",
                    m.name, m.client, m.peer
                ));
            }
        }
        panic!("the etcd cluster did not serve within 20 s, three times\n{logs}");
    }

    /// One member that serves clients over TLS only, with `cert`/`key`, and asks each client
    /// for a certificate signed by `ca`; returns once its port accepts connections.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> EtcdCluster {
        let cluster = EtcdCluster::launch(1, Some([cert, key, ca]));
        let port = cluster.members[0].client;
        super::wait_until(Duration::from_secs(20), "etcd to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        std::thread::sleep(Duration::from_secs(1));
        cluster
    }

    fn launch(n: usize, tls: Option<[&Path; 3]>) -> EtcdCluster {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let bin = etcd_binary().expect("etcd is not installed (scripts/test.sh installs it)");
        let dir = tempfile::Builder::new()
            .prefix("failover-handler-etcd-")
            .tempdir()
            .unwrap();
        let token = format!(
            "fh-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = EtcdCluster {
            members,
            _dir: dir,
            scheme: if tls.is_some() { "https" } else { "http" },
            bin,
            token,
            tls: tls.map(|t| t.map(Path::to_owned)),
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    /// Starts member `i` on its ports and data dir (a new member when the dir is empty).
    fn spawn(&mut self, i: usize) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect();
        let initial = initial.join(",");
        let m = &self.members[i];
        let client = format!("{}://127.0.0.1:{}", self.scheme, m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self._dir.path().join(format!("{}.log", m.name)))
            .unwrap();
        let mut command = Command::new(&self.bin);
        if let Some([cert, key, ca]) = &self.tls {
            command
                .arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self._dir.path().join(&m.name))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.members[i].child = Some(child);
    }

    /// The client URLs as the config file lists them.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("{}://127.0.0.1:{}", self.scheme, m.client))
            .collect()
    }

    /// `endpoints = [...]` for a config file.
    pub fn endpoints_toml(&self) -> String {
        let quoted: Vec<String> = self
            .endpoints()
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect();
        format!("[{}]", quoted.join(", "))
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to member `i`, if it runs.
    pub fn signal(&self, i: usize, signal: &str) {
        if let Some(child) = &self.members[i].child {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status();
        }
    }

    /// Starts member `i` again after `kill`, on its ports and with its data.
    pub fn restart(&mut self, i: usize) {
        if self.members[i].child.is_none() {
            self.spawn(i);
        }
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Kills every member, deletes their data and starts a new, empty cluster on the same
    /// ports (a cluster token of its own): the store as after a restore of nothing.
    pub fn wipe(&mut self) {
        static WIPES: AtomicUsize = AtomicUsize::new(0);
        for i in 0..self.members.len() {
            self.signal(i, "CONT");
            self.kill(i);
            let _ = std::fs::remove_dir_all(self._dir.path().join(&self.members[i].name));
        }
        self.token = format!("{}-w{}", self.token, WIPES.fetch_add(1, Ordering::Relaxed));
        for i in 0..self.members.len() {
            self.spawn(i);
        }
    }

    /// SIGSTOPs member `i` (`stopped`) or SIGCONTs it: a member that hangs, keeping its data,
    /// its leases and its place in the cluster for when it goes on.
    pub fn freeze(&self, i: usize, stopped: bool) {
        if let Some(child) = &self.members[i].child {
            let signal = if stopped {
                libc::SIGSTOP
            } else {
                libc::SIGCONT
            };
            // SAFETY: kill(2) on a child this cluster started and has not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
        }
    }

    /// The index of the member that leads the raft group now, if one does.
    pub fn leader(&self) -> Option<usize> {
        let statuses: Vec<Option<Value>> = (0..self.members.len())
            .map(|i| self.post(i, "/v3/maintenance/status", &json!({})))
            .collect();
        let leader = statuses
            .iter()
            .flatten()
            .find_map(|s| s["leader"].as_str().map(str::to_owned))?;
        statuses.iter().position(|s| {
            s.as_ref().and_then(|s| s["header"]["member_id"].as_str()) == Some(&leader)
        })
    }

    /// Every key under `prefix` as (key, value), from any live member.
    pub fn range(&self, prefix: &str) -> Vec<(String, String)> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().unwrap() += 1;
        let body = json!({"key": b64.encode(prefix), "range_end": b64.encode(&end)});
        for i in 0..self.members.len() {
            if let Some(v) = self.post(i, "/v3/kv/range", &body) {
                let decode = |v: &Value| {
                    String::from_utf8(b64.decode(v.as_str().unwrap_or_default()).unwrap()).unwrap()
                };
                return v["kvs"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|kv| (decode(&kv["key"]), decode(&kv["value"])))
                            .collect()
                    })
                    .unwrap_or_default();
            }
        }
        Vec::new()
    }

    /// The store's revision: it grows by one with each write, not with lease keep-alives.
    pub fn revision(&self) -> i64 {
        for i in 0..self.members.len() {
            if let Some(v) = self.post(i, "/v3/kv/range", &json!({"key": "eA=="})) {
                return v["header"]["revision"].as_str().unwrap().parse().unwrap();
            }
        }
        panic!("no etcd member answers");
    }

    /// One JSON POST to member `i`; `None` when it does not answer 200 within a second.
    pub fn post(&self, i: usize, path: &str, body: &Value) -> Option<Value> {
        self.members[i].child.as_ref()?;
        let mut s = TcpStream::connect(("127.0.0.1", self.members[i].client)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let body = body.to_string();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut out = String::new();
        let started = Instant::now();
        let _ = s.read_to_string(&mut out);
        if started.elapsed() > Duration::from_secs(2) || !out.starts_with("HTTP/1.1 200") {
            return None;
        }
        let (head, body) = out.split_once("\r\n\r\n")?;
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            serde_json::from_str(&unchunk(body)).ok()
        } else {
            serde_json::from_str(body).ok()
        }
    }
}

impl EtcdCluster {
    /// The sum of member `i`'s Prometheus counter `name` over the lines that contain
    /// `label` (e.g. `grpc_method="Authenticate"`).
    pub fn metric(&self, i: usize, name: &str, label: &str) -> f64 {
        let mut s = TcpStream::connect(("127.0.0.1", self.members[i].client)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.lines()
            .filter(|l| l.starts_with(name) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// The body of a chunked HTTP/1.1 response.
fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// A TCP forwarder to one etcd member that can cut its host off: cutting closes the
/// connections it carries, and while cut every new connection is closed at once, as by a
/// broken network.
pub struct Cutter {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// The client side of each connection carried.
    live: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Cutter {
    pub fn new(target: &str) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = target.trim_start_matches("http://").to_owned();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (cutting, stopping) = (cut.clone(), stop.clone());
        let live = Arc::new(std::sync::Mutex::new(Vec::new()));
        let carried = live.clone();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if cutting.load(Ordering::Relaxed) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                carried.lock().unwrap().push(client.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Cutter {
            port,
            cut,
            stop,
            live,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
        if cut {
            for client in self.live.lock().unwrap().drain(..) {
                let _ = client.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
