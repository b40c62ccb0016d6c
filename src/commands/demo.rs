//! `failover-handler demo`: a failover watched from start to end, in one process on loopback.
//! Three fake regional clouds, a stand-in tunnel that follows the env file, and the real daemon
//! loop (the same `Daemon`, `HttpProbe`, policy, env-file and log code) with short timings in a
//! temp dir. It narrates what the daemon logs, injects an outage into the active region, waits
//! for recovery on the next one, and prints a summary of each step's timing.

mod narration;
mod stage;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::prelude::*;

use crate::adapters::files::StateDir;
use crate::config::cli::{LogFormat, Options};
use crate::config::{Config, DEFAULT_PROGRAMS, duration_text};
use crate::daemon::Daemon;
use crate::daemon::main_probe;
use crate::report::told;
use narration::{Journal, Narrator, Seen, elapsed, say, stdout_closed};
use stage::{Behaviour, DemoRestart, FakeCloud, Tunnel};
use summary::Timeline;

const INTERVAL: Duration = Duration::from_millis(250);
const TIMEOUT: Duration = Duration::from_millis(200);
const THRESHOLD: Duration = Duration::from_secs(2);
/// How long each stand-in supervisorctl call takes.
const STEP: Duration = Duration::from_millis(50);
/// The demo gives up (exit 1) when a step has not happened by then.
const DEADLINE: Duration = Duration::from_secs(25);
const HEALTHY_BEFORE: usize = 4;
const HEALTHY_AFTER: usize = 3;
const REGIONS: [(&str, &str); 3] = [
    ("NAM", "cloud.nam.ext.com"),
    ("EU", "cloud.eu.ext.com"),
    ("APAC", "cloud.apac.ext.com"),
];

/// Runs the demo; exit 0 once the outage was failed over and the new region is healthy.
pub async fn run() -> Result<ExitCode> {
    let t0 = Instant::now();
    let journal = Journal::default();
    tracing_subscriber::registry()
        .with(Narrator {
            t0,
            journal: journal.clone(),
        })
        .try_init()
        .map_err(|e| anyhow!("cannot set up the narration: {e}"))?;
    let dir = tempfile::Builder::new()
        .prefix("failover-handler-demo-")
        .tempdir()
        .context("cannot create a temp dir for the demo")?;
    let cancel = CancellationToken::new();
    let result = Scene::set_up(dir.path().to_path_buf(), t0, journal, &cancel).await;
    let outcome = match result {
        Ok(scene) => scene.play(&cancel).await,
        Err(e) => Err(e),
    };
    cancel.cancel();
    outcome
}

/// Everything on stage, and the config the daemon runs with.
struct Scene {
    t0: Instant,
    journal: Journal,
    config: Arc<Config>,
    clouds: Vec<FakeCloud>,
    tunnel: Arc<Tunnel>,
}

impl Scene {
    async fn set_up(
        dir: PathBuf,
        t0: Instant,
        journal: Journal,
        cancel: &CancellationToken,
    ) -> Result<Scene> {
        let mut clouds = Vec::new();
        for (region, host) in REGIONS {
            clouds.push(
                FakeCloud::start(region, host, cancel)
                    .await
                    .context("cannot start a fake cloud on 127.0.0.1")?,
            );
        }
        let list: Vec<String> = REGIONS.iter().map(|(r, h)| format!("{r}={h}")).collect();
        let list = list.join(",");
        let reserved = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free port on 127.0.0.1")?;
        let options = Options {
            env_file: Some(dir.join("ext_cloud.env")),
            state_dir: Some(dir.join("state")),
            probe_url: Some(format!(
                "http://{reserved}/v2/{{org_id}}/cloudlookup/{{txn_id}}"
            )),
            interval: Some(INTERVAL),
            timeout: Some(TIMEOUT),
            threshold: Some(THRESHOLD),
            log_format: Some(LogFormat::Text),
            ..Options::default()
        };
        // The demo's own environment: nothing of the user's (no config file, no Datadog key).
        let env = |name: &str| match name {
            "EXT_CLOUD_FAILOVER_LIST" => Some(list.clone()),
            "CONNECTION_KEEPALIVE_ORG_ID" => Some("demo-org".to_string()),
            "CONNECTION_KEEPALIVE_TXN_ID" => Some("demo-txn".to_string()),
            _ => None,
        };
        let config = Config::build(&options, &env)?;
        let routes = clouds.iter().map(|c| (c.host.clone(), c.addr)).collect();
        let tunnel = Tunnel::at(reserved, routes, config.env_file.clone(), cancel);
        Ok(Scene {
            t0,
            journal,
            config: Arc::new(config),
            clouds,
            tunnel: Arc::new(tunnel),
        })
    }

    fn scene(&self, text: &str) {
        say(&format!(
            "{:>7}  ==>   {text}",
            elapsed(self.t0, Instant::now())
        ));
    }

    fn introduce(&self) {
        let c = &self.config;
        say("failover-handler demo: an outage and a failover on 127.0.0.1, in about 5 seconds");
        say("");
        for cloud in &self.clouds {
            say(&format!(
                "  region {:<5} cloud {:<19} a fake cloud on {}",
                cloud.region, cloud.host, cloud.addr
            ));
        }
        say(&format!(
            "  tunnel      {}: a stand-in for stunnel, forwarding to the cloud the env file names",
            self.tunnel.addr()
        ));
        say(&format!(
            "  daemon      the real loop: probes {} every {} (timeout {}), outage after {} of failures",
            c.probe.url,
            duration_text(c.probe.interval),
            duration_text(c.probe.timeout),
            duration_text(c.failover.threshold)
        ));
        say(&format!(
            "  env file    {} (in a temp dir, removed at the end)",
            c.env_file.path.display()
        ));
        say(
            "  restarts    stand-in supervisorctl calls: stop application, cloud-client, stunnel; start them in reverse",
        );
        say(
            "  (in production: probes every 10s through stunnel, a 4 min threshold, restarts through supervisord)",
        );
        say("");
    }

    async fn play(self, cancel: &CancellationToken) -> Result<ExitCode> {
        self.introduce();
        let daemon_cancel = cancel.child_token();
        let restarter = DemoRestart {
            tunnel: Arc::clone(&self.tunnel),
            programs: self.config.restart.programs.clone(),
            tunnel_program: DEFAULT_PROGRAMS[2].to_string(),
            step: STEP,
        };
        let probe = main_probe(&self.config)?;
        let state = StateDir::open(&self.config.state_dir);
        told::state_dir(&state, &self.config.state_dir);
        let daemon = Daemon::new(Arc::clone(&self.config), probe, restarter, state);
        let (_, outcome) = tokio::join!(daemon.run(daemon_cancel.clone()), async {
            let outcome = self.script().await;
            daemon_cancel.cancel();
            outcome
        });
        match outcome {
            Ok(timeline) => {
                timeline.print(&self.config);
                Ok(ExitCode::SUCCESS)
            }
            Err(_) if stdout_closed() => Ok(ExitCode::SUCCESS),
            Err(missing) => {
                say(&format!(
                    "demo: {missing} did not happen within {}; stopping",
                    duration_text(DEADLINE)
                ));
                Ok(ExitCode::from(1))
            }
        }
    }

    /// Waits until `found` gives a value, or fails with `what` at the deadline.
    async fn wait<T>(&self, what: &str, found: impl Fn() -> Option<T>) -> Result<T, String> {
        loop {
            if let Some(v) = found() {
                return Ok(v);
            }
            if self.t0.elapsed() > DEADLINE || stdout_closed() {
                return Err(what.to_string());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for `n` healthy probes after `t`; returns the last one.
    async fn healthy_probes(&self, t: Instant, n: usize, what: &str) -> Result<Seen, String> {
        self.wait(what, || {
            self.journal.after(t, "probe_ok").into_iter().nth(n - 1)
        })
        .await
    }

    /// Waits for the start-up restart and healthy probes of the first region; returns its
    /// cloud.
    async fn settled(&self) -> Result<&FakeCloud, String> {
        let started = self
            .wait("the start-up restart", || {
                self.journal.first_after(self.t0, "restart_done")
            })
            .await?;
        let active = self
            .config
            .env_file
            .read()
            .ok()
            .flatten()
            .and_then(|c| c.region)
            .ok_or("the env file naming the first region")?;
        let cloud = self
            .clouds
            .iter()
            .find(|c| c.region == active)
            .ok_or("a cloud for the active region")?;
        self.healthy_probes(started.at, HEALTHY_BEFORE, "healthy probes")
            .await?;
        Ok(cloud)
    }

    /// Makes `cloud` answer 503, then hang once the outage is half its threshold old;
    /// returns when the outage began and when the hang did.
    async fn inject_outage(&self, cloud: &FakeCloud) -> Result<(Instant, Instant), String> {
        cloud.set(Behaviour::Answer(503));
        let outage = Instant::now();
        self.scene(&format!(
            "Outage injected: {} ({}) now answers 503 Service Unavailable",
            cloud.host, cloud.region
        ));
        let first = self
            .wait("a failed probe", || {
                self.journal.first_after(outage, "probe_failed")
            })
            .await?;
        let hang_at = first.at + THRESHOLD / 2;
        tokio::time::sleep_until(hang_at.into()).await;
        cloud.set(Behaviour::Hang);
        let hang = Instant::now();
        self.scene(&format!(
            "{} now accepts connections but never answers (the probe times out after {})",
            cloud.host,
            duration_text(TIMEOUT)
        ));
        Ok((outage, hang))
    }

    async fn script(&self) -> Result<Timeline, String> {
        let cloud = self.settled().await?;
        let (outage, hang) = self.inject_outage(cloud).await?;
        let failover = self
            .wait("the failover", || {
                self.journal.first_after(outage, "failover")
            })
            .await?;
        let written = self
            .wait("the env file write", || {
                self.journal.first_after(failover.at, "env_file_written")
            })
            .await?;
        let restarted = self
            .wait("the restart", || {
                self.journal.first_after(failover.at, "restart_done")
            })
            .await?;
        let to = failover.field("to_region").unwrap_or_default().to_string();
        let first_ok = self
            .healthy_probes(restarted.at, 1, "a healthy probe on the new region")
            .await?;
        self.healthy_probes(
            restarted.at,
            HEALTHY_AFTER,
            "healthy probes on the new region",
        )
        .await?;
        self.scene(&format!(
            "Recovered: {HEALTHY_AFTER} healthy probes in a row on {to}; stopping the daemon"
        ));
        let served = self
            .clouds
            .iter()
            .find(|c| c.region == to)
            .and_then(|c| c.first_healthy_answer_after(restarted.at));
        let failures = self.journal.after(outage, "probe_failed");
        let failures: Vec<Seen> = failures
            .into_iter()
            .filter(|s| s.at <= failover.at)
            .collect();
        Ok(Timeline {
            from_region: cloud.region.clone(),
            from_cloud: cloud.host.clone(),
            outage,
            hang,
            failures,
            failover,
            written,
            restarted,
            first_ok,
            served,
        })
    }
}
