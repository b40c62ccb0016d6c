//! Hostile peers on the network side, played from 127.0.0.1: a flood of idle connections on
//! the metrics port during an outage, and a Datadog intake and an etcd that answer with a body
//! that never ends. The daemon fails the call, says so, keeps its memory, and runs on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{
    Cmd, Mode, TestDir, env_for, in_region, peak_rss_kib, text, wait_for_probes, wait_until,
};

const WAIT: Duration = Duration::from_secs(20);

/// The most a daemon may hold in memory while a peer streams at it.
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// What an endless server sends on one connection before it only holds it open: far past any
/// cap the daemon may keep, and a guard that keeps a daemon without one from eating the test
/// machine.
const ENDLESS_GUARD: u64 = 128 * 1024 * 1024;

/// Raises this process's own descriptor limit so that it can play many clients.
fn raise_own_nofile(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= want,
        "cannot raise RLIMIT_NOFILE to {want}"
    );
}

/// The daemon's open descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn idle_connections_on_the_metrics_port_do_not_starve_a_failover() {
    // The server's 64 connections and the daemon's own files, far from the limit.
    flood_during_an_outage(1_024, "connections", 160);
}

#[test]
fn idle_connections_under_a_low_descriptor_limit_leave_the_reserve_to_the_failover() {
    // 128 descriptors stay free: the server takes only what is left above them.
    flood_during_an_outage(160, "descriptors", 64);
}

/// 1,100 idle connections on the metrics port of a daemon under `ulimit -n nofile`, held
/// through an outage: the failover completes, the server says `metrics_busy` for `reason`,
/// and the daemon holds fewer than `fd_bound` descriptors.
fn flood_during_an_outage(nofile: u64, reason: &str, fd_bound: usize) {
    const ATTACK: usize = 1_100;
    raise_own_nofile(4_096);
    let (dir, tunnel) = in_region("NAM");
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .flag("--threshold", "2s")
        .nofile(nofile)
        .spawn_daemon();
    let listening = d.wait_for_event("metrics_listening", WAIT);
    let addr: SocketAddr = text(&listening["addr"]).parse().unwrap();
    wait_for_probes(&tunnel, "NAM", 2);

    let attacker = Attacker::start(addr, ATTACK);
    wait_until(WAIT, "the attacker's first connections", || {
        attacker.held() >= 128
    });
    tunnel.set_region("NAM", Mode::Status(503));
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    assert_eq!(dir.read_env().as_deref(), Some(env_for("EU").as_str()));
    let peak = open_fds(d.pid());
    println!("the daemon has {peak} descriptors open after the failover");
    assert!(
        !d.dump().contains("Too many open files"),
        "the daemon ran out of descriptors:\n{}",
        d.dump()
    );
    assert!(peak < fd_bound, "{peak} descriptors open");
    let busy = d.wait_for_event("metrics_busy", WAIT);
    assert_eq!(busy["reason"], reason, "{busy}");

    println!(
        "the attacker held up to {} connections at once, {} in all",
        attacker.most(),
        attacker.opened()
    );
    // Once the attacker leaves, the page answers again.
    drop(attacker);
    wait_until(WAIT, "/metrics answers", || {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
    });
    d.finish();
}

#[test]
fn idle_connections_to_the_metrics_port_are_closed_after_5_s() {
    let (dir, tunnel) = in_region("NAM");
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let listening = d.wait_for_event("metrics_listening", WAIT);
    let addr: SocketAddr = text(&listening["addr"]).parse().unwrap();
    let started = Instant::now();
    // One says nothing at all; the other asks once, keeps the connection alive and goes quiet.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for (name, conn) in [("silent", &mut silent), ("kept alive", &mut kept)] {
        conn.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut got = Vec::new();
        let end = conn.read_to_end(&mut got);
        let after = started.elapsed();
        println!("the {name} connection ended after {after:?}: {end:?}");
        assert!(
            end.is_ok(),
            "the {name} connection stayed open for {after:?}"
        );
        assert!(
            after >= Duration::from_secs(4) && after < Duration::from_secs(10),
            "the {name} connection ended after {after:?}"
        );
        if name == "kept alive" {
            assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
        }
    }
    d.finish();
}

/// Holds up to `want` idle connections to `addr`, sending nothing, on a thread of its own:
/// those the server closes are opened again, and a connect that hangs (the listen queue is
/// full) is given up after 100 ms and tried again. Stops when dropped.
struct Attacker {
    stop: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    opened: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Attacker {
    fn start(addr: SocketAddr, want: usize) -> Attacker {
        let stop = Arc::new(AtomicBool::new(false));
        let (held, most, opened) = Default::default();
        let (s, h, m, o): (
            Arc<AtomicBool>,
            Arc<AtomicUsize>,
            Arc<AtomicUsize>,
            Arc<AtomicUsize>,
        ) = (
            Arc::clone(&stop),
            Arc::clone(&held),
            Arc::clone(&most),
            Arc::clone(&opened),
        );
        let thread = thread::spawn(move || {
            let mut conns: Vec<TcpStream> = Vec::new();
            while !s.load(Ordering::Relaxed) {
                conns.retain(|c| {
                    let mut b = [0u8; 1];
                    c.set_nonblocking(true).is_ok()
                        && matches!(c.peek(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                });
                while conns.len() < want && !s.load(Ordering::Relaxed) {
                    match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                        Ok(c) => {
                            conns.push(c);
                            o.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
                h.store(conns.len(), Ordering::Relaxed);
                m.fetch_max(conns.len(), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(50));
            }
        });
        Attacker {
            stop,
            held,
            most,
            opened,
            thread: Some(thread),
        }
    }

    fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::Relaxed)
    }

    fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server on 127.0.0.1 that answers every request with `status` and a chunked body that
/// does not end (up to [`ENDLESS_GUARD`], then it holds the connection open without a last
/// chunk). The body is `]`: never the end of a JSON value. Counts the bytes it sent.
fn endless_server(status: &str) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let counter = sent.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (head, counter) = (head.clone(), counter.clone());
            thread::spawn(move || {
                // The request head, then the answer at once: its body does not matter.
                let mut seen = Vec::new();
                let mut byte = [0u8; 1];
                while !seen.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => seen.push(byte[0]),
                        _ => return,
                    }
                }
                let chunk_len = 64 * 1024;
                let mut chunk = format!("{chunk_len:x}\r\n").into_bytes();
                chunk.extend(std::iter::repeat_n(b']', chunk_len));
                chunk.extend_from_slice(b"\r\n");
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let mut written = 0u64;
                while written < ENDLESS_GUARD {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                    written += chunk_len as u64;
                    counter.fetch_add(chunk_len as u64, Ordering::Relaxed);
                }
                // Hold the connection until the client hangs up.
                let _ = stream.read(&mut byte);
            });
        }
    });
    (addr, sent)
}

#[test]
fn an_intake_answer_that_never_ends_fails_the_send_and_is_not_buffered() {
    let (addr, sent) = endless_server("202 Accepted");
    let (dir, tunnel) = in_region("NAM");
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .env("DD_API_KEY", "dd-endless-key-0123456789")
        .env(
            "FAILOVER_HANDLER_DD_URL",
            &format!("http://{addr}/api/v2/logs"),
        )
        .spawn_daemon();
    // The daemon gives up on the answer, or the guard ends the stream (which no cap allows).
    wait_until(WAIT, "a retry, or the whole guard streamed", || {
        !d.events("datadog_retry").is_empty() || sent.load(Ordering::Relaxed) >= ENDLESS_GUARD
    });
    let rss = peak_rss_kib(d.pid());
    println!(
        "peak RSS {rss} KiB; the intake sent {} KiB",
        sent.load(Ordering::Relaxed) / 1024
    );
    let retry = d.wait_for_event("datadog_retry", Duration::from_secs(1));
    assert!(
        text(&retry["message"]).contains("answer larger than 64 KiB"),
        "{retry}"
    );
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
    wait_for_probes(&tunnel, "NAM", 2);
    assert!(!d.dump().contains("dd-endless-key"));
    d.finish();
}

#[test]
fn an_etcd_answer_that_never_ends_fails_the_call_and_is_not_buffered() {
    let (addr, sent) = endless_server("200 OK");
    let dir = TestDir::with_env("EU");
    let tunnel = crate::support::FakeTunnel::start(&dir);
    let config = dir.write_file(
        "fleet.toml",
        &format!(
            "[fleet]\nendpoints = [\"http://{addr}\"]\nname = \"endless\"\nhost = \"h0\"\nlease_ttl = \"3s\"\n"
        ),
    );
    let d = Cmd::new(&dir)
        .tunnel_in(&tunnel, "EU")
        .flag("--config", config.to_str().unwrap())
        .spawn_daemon();
    let lost = d.wait_for_event("fleet_store_lost", WAIT);
    let rss = peak_rss_kib(d.pid());
    println!(
        "peak RSS {rss} KiB; the store sent {} KiB",
        sent.load(Ordering::Relaxed) / 1024
    );
    assert!(
        text(&lost["error"]).contains("answer larger than 1 MiB"),
        "{lost}"
    );
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
    wait_for_probes(&tunnel, "EU", 2);
    d.finish();
}

#[test]
fn an_etcd_password_over_http_is_warned_about_at_start_or_refused() {
    let fleet = |dir: &TestDir, extra: &str| {
        let path = dir.write_file(
            "fleet.toml",
            &format!(
                "[fleet]\nendpoints = [\"https://127.0.0.1:1\", \"http://127.0.0.1:2\"]\nname = \"clear\"\nhost = \"h0\"\n{extra}"
            ),
        );
        Cmd::new(dir)
            .flag("--config", path.to_str().unwrap())
            .env("FAILOVER_HANDLER_ETCD_USER", "root")
            .env("FAILOVER_HANDLER_ETCD_PASSWORD", "pw-plain-3")
    };
    let dir = TestDir::with_env("EU");
    let tunnel = crate::support::FakeTunnel::start(&dir);
    let d = fleet(&dir, "").tunnel_in(&tunnel, "EU").spawn_daemon();
    let warning = d.wait_for(
        |v| v["event"] == "config_warning" && text(&v["message"]).contains("in clear"),
        WAIT,
    );
    println!("{}", warning["message"]);
    let said = text(&warning["message"]);
    assert!(
        said.contains("http://127.0.0.1:2") && said.contains("fleet.on_plaintext"),
        "{warning}"
    );
    assert!(!said.contains("https://127.0.0.1:1"), "{warning}");
    assert!(!d.dump().contains("pw-plain-3"));
    d.finish();

    // "refuse" stops at start, and so does a value that means nothing.
    for (extra, key) in [
        ("on_plaintext = \"refuse\"\n", "fleet.endpoints"),
        ("on_plaintext = \"maybe\"\n", "fleet.on_plaintext"),
    ] {
        let dir = TestDir::new();
        let cmd = fleet(&dir, extra).sub(&["run"]);
        let out = cmd.output();
        println!("{}", out.stderr);
        assert!(!out.stderr.contains("pw-plain-3"), "{out:?}");
        crate::support::assert_bad_input(&dir, cmd, &[key]);
    }
}
