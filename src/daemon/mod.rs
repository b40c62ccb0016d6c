//! The daemon: one loop (tick -> read the env file -> probe -> decide -> act) around the pure
//! policy. It takes a `CancellationToken` and stops at a safe point: never between starting an
//! env-file write and finishing it. Starting and following the env file live in `env`; what a
//! probe's outcome leads to (a decision and its report) lives in `probe_outcome`, and the acts
//! the kernel's driver asks for (a write, a restart, a measurement), made for real, in
//! `effects`.

pub mod actuator;
mod carry_over;
mod clock;
mod effects;
mod env;
pub mod fleet;
pub mod guards;
mod handler_state;
pub mod pause;
pub mod pin;
mod probe;
mod probe_outcome;
mod reload;
mod switching;
mod wiring;

pub use probe::main_probe;
pub use reload::Reload;
pub use wiring::{run, stop_signal};

use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::adapters::files::StateDir;
use crate::adapters::http::CheckReport;
use crate::adapters::http::Probe;
use crate::adapters::http::Throughput;
use crate::adapters::supervisor::Restart;
use crate::config::Config;
use crate::daemon::guards::Guards;
use crate::daemon::pin::PinSync;
use crate::kernel::policy::{Input, Policy};
use crate::kernel::region::Region;
use crate::kernel::standby::Subject;
use crate::report::event::Place;
use crate::report::observer::Observer;

pub struct Daemon<P, R> {
    config: Arc<Config>,
    policy: Policy,
    probe: P,
    /// The env file written and the programs restarted, as `switch` does them too.
    actuator: actuator::Actuator<R>,
    state: StateDir,
    /// The region the env file named when we last read or wrote it: a different one on disk
    /// means somebody switched by hand.
    last_seen: Option<String>,
    /// Standby checks, throughput gate and latency file.
    guards: Guards,
    /// The pin of a manual switch, in step with the pin file.
    pin: PinSync,
    /// Where decisions are reported: logs, metrics, status, journal, Datadog.
    obs: Observer,
    /// What survives a restart of the handler, as last written to the state directory.
    handler_state: handler_state::HandlerState,
    /// `pause`/`resume` as the state directory says.
    pause: pause::Gate,
    /// A switch by hand restarting the programs, as its mark in the state directory says.
    switching: switching::SwitchWatch,
    /// `[fleet]`: the hosts keep one region through the store.
    fleet: Option<fleet::Fleet>,
    /// The lease check of the restart under way, when it holds a fleet's slot.
    gate: Option<fleet::Gate>,
    /// The last restart stopped when its lease lapsed.
    lapsed: bool,
    /// A failing env-file write, said once rather than at every retry.
    write_trouble: env::WriteTrouble,
    /// SIGHUP: how to build the configuration again, and the signal's arrivals.
    reload: Option<Reload>,
    hup: Option<tokio::sync::mpsc::Receiver<()>>,
    /// Called once, when the first probe has been made and judged: start-up is over.
    first_probe: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl<P: Probe, R: Restart> Daemon<P, R> {
    pub fn new(config: Arc<Config>, probe: P, restarter: R, state: StateDir) -> Self {
        Daemon {
            policy: config.policy(0),
            guards: Guards::new(config.clone()),
            pin: PinSync::new(config.regions.clone(), config.dry_run),
            obs: Observer::new(&config),
            handler_state: handler_state::HandlerState::default(),
            pause: pause::Gate::new(state.clone()),
            switching: switching::SwitchWatch::new(
                config.restart.timeout,
                config.restart.programs.len(),
            ),
            actuator: actuator::Actuator::new(config.env_file.clone(), state.clone(), restarter),
            config,
            probe,
            state,
            last_seen: None,
            fleet: None,
            gate: None,
            lapsed: false,
            write_trouble: env::WriteTrouble::default(),
            reload: None,
            hup: None,
            first_probe: None,
        }
    }

    /// Attaches the standby check results and the throughput gate's meter.
    pub fn with_checks(
        mut self,
        checks: Option<tokio::sync::mpsc::Receiver<Vec<CheckReport>>>,
        throughput: Option<Throughput>,
    ) -> Self {
        self.guards.attach(checks, throughput);
        self
    }

    /// Builds the configuration again with `reload` at each message on `hup` (SIGHUP).
    pub fn with_reload(mut self, reload: Reload, hup: tokio::sync::mpsc::Receiver<()>) -> Self {
        self.reload = Some(reload);
        self.hup = Some(hup);
        self
    }

    /// Calls `done` once, after the first probe's outcome is judged.
    pub fn after_first_probe(mut self, done: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.first_probe = Some(Box::new(done));
        self
    }

    /// Reports to `obs` (wired to the journal, endpoints and Datadog) instead of memory only.
    pub fn with_observer(mut self, obs: Observer) -> Self {
        self.obs = obs;
        self
    }

    fn region(&self, i: usize) -> &Region {
        &self.config.regions[i]
    }

    fn active(&self) -> &Region {
        self.region(self.policy.active())
    }

    /// Region `i` as events name it.
    fn place(&self, i: usize) -> Place {
        let r = self.region(i);
        Place {
            region: r.name.clone(),
            cloud: r.cloud.clone(),
        }
    }

    /// Runs until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        self.start(&cancel).await;
        let mut next = Instant::now();
        let mut fleet_next = Instant::now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(fleet_next), if self.fleet.is_some() => {
                    self.fleet_tick(&cancel).await;
                    fleet_next = Instant::now() + self.fleet_poll();
                    continue;
                }
                batch = self.guards.next_batch() => {
                    let checked: Vec<usize> = batch
                        .iter()
                        .filter_map(|r| match r.subject {
                            Subject::Region(i) => Some(i),
                            Subject::Reference(_) => None,
                        })
                        .collect();
                    self.guards.checked(&mut self.policy, batch);
                    self.report_checks(&checked);
                    continue;
                }
                Some(()) = next_hup(&mut self.hup) => {
                    self.reload();
                    continue;
                }
                _ = tokio::time::sleep_until(next) => {}
            }
            let started = Instant::now();
            self.sync_env_file(&cancel).await;
            self.pin.sync(&mut self.policy, &self.state, &mut self.obs);
            self.pause.refresh(&mut self.policy, &mut self.obs);
            let owed = self.policy.step(started.into_std(), Input::Tick);
            self.carry_out(owed, &cancel).await;
            if cancel.is_cancelled() {
                break;
            }
            self.probe.set_region(self.active());
            let report = tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.probe.probe() => r,
            };
            self.observe(report, &cancel).await;
            if let Some(done) = self.first_probe.take() {
                done();
            }
            if self.fleet_view_changed() {
                self.fleet_tick(&cancel).await;
            }
            let cadence = if self.policy.failing_since().is_some() {
                self.config.probe.fail_interval
            } else {
                self.config.probe.interval
            };
            next = started + cadence;
        }
        self.fleet_leave().await;
        self.obs.stopping();
    }
}

/// The next SIGHUP; never, without a reload wired.
async fn next_hup(hup: &mut Option<tokio::sync::mpsc::Receiver<()>>) -> Option<()> {
    match hup {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::http::{ErrorKind, ProbeReport};
    use crate::testing::{CountingRestart, report};
    use std::time::Duration;

    /// A probe that answers from a script of outcomes keyed by elapsed time.
    struct ScriptedProbe {
        t0: Instant,
        /// Until each instant (seconds since t0) the probe gives this answer.
        script: Vec<(u64, bool)>,
    }

    impl Probe for ScriptedProbe {
        async fn probe(&self) -> ProbeReport {
            let elapsed = self.t0.elapsed().as_secs();
            let ok = self
                .script
                .iter()
                .find(|(until, _)| elapsed < *until)
                .is_none_or(|(_, ok)| *ok);
            report((!ok).then_some(ErrorKind::Refused))
        }
    }

    fn config(dir: &std::path::Path, args: &[&str]) -> Arc<Config> {
        let env = dir.join("ext_cloud.env");
        let mut argv = vec!["--env-file", env.to_str().unwrap()];
        argv.extend_from_slice(args);
        Arc::new(crate::testing::config(&argv))
    }

    #[tokio::test(start_paused = true)]
    async fn sustained_outage_fails_over_once_then_the_new_region_gets_a_full_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            &["--region", "EU", "--interval", "10s", "--threshold", "4m"],
        );
        let restarts = CountingRestart::default();
        let t0 = Instant::now();
        // EU fails from 100 s on; NAM (after the switch) fails too, forever.
        let probe = ScriptedProbe {
            t0,
            script: vec![(100, true), (u64::MAX, false)],
        };
        let state = StateDir::open(&dir.path().join("state"));
        let daemon = Daemon::new(cfg.clone(), probe, restarts.clone(), state);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(daemon.run(cancel.clone()));
        tokio::time::sleep(Duration::from_secs(100 + 240 + 5)).await;
        let env = std::fs::read_to_string(&cfg.env_file.path).unwrap();
        assert_eq!(
            env,
            "export EXT_CLOUD=cloud.nam.ext.com\nexport EXT_REGION=NAM\n"
        );
        let times = restarts.0.lock().unwrap().clone();
        assert_eq!(times.len(), 2, "start + one failover");
        let failover_at = times[1] - t0;
        assert!(
            failover_at >= Duration::from_secs(100 + 240),
            "{failover_at:?}"
        );
        assert!(
            failover_at <= Duration::from_secs(100 + 240 + 10),
            "{failover_at:?}"
        );
        // NAM is failing too: the next move comes a full threshold after NAM's first failure.
        tokio::time::sleep(Duration::from_secs(230)).await;
        assert_eq!(restarts.0.lock().unwrap().len(), 2);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(restarts.0.lock().unwrap().len(), 3);
        let env = std::fs::read_to_string(&cfg.env_file.path).unwrap();
        assert!(env.contains("EXT_REGION=APAC"), "{env}");
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_manual_switch_is_adopted_not_fought() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &["--interval", "10s", "--threshold", "1m"]);
        let restarts = CountingRestart::default();
        let probe = ScriptedProbe {
            t0: Instant::now(),
            script: vec![],
        };
        let daemon = Daemon::new(
            cfg.clone(),
            probe,
            restarts.clone(),
            StateDir::open(&dir.path().join("s")),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn(daemon.run(cancel.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            std::fs::read_to_string(&cfg.env_file.path)
                .unwrap()
                .contains("EXT_REGION=NAM")
        );
        let apac = cfg.region("APAC").unwrap();
        cfg.env_file.write(apac).unwrap();
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(
            std::fs::read_to_string(&cfg.env_file.path)
                .unwrap()
                .contains("EXT_REGION=APAC")
        );
        assert_eq!(
            restarts.0.lock().unwrap().len(),
            1,
            "only the start-up restart"
        );
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupted_restart_is_finished_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &["--region", "EU"]);
        cfg.env_file.write(cfg.region("EU").unwrap()).unwrap();
        let state = StateDir::open(&dir.path().join("s"));
        state.mark_restart_pending("EU").unwrap();
        let restarts = CountingRestart::default();
        let probe = ScriptedProbe {
            t0: Instant::now(),
            script: vec![],
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(
            Daemon::new(cfg, probe, restarts.clone(), state.clone()).run(cancel.clone()),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(restarts.0.lock().unwrap().len(), 1);
        assert_eq!(state.restart_pending(), None);
        cancel.cancel();
        task.await.unwrap();
    }

    /// supervisord shows every program up, started at `started_at_s`.
    struct SeenUp(CountingRestart, u64);

    impl Restart for SeenUp {
        async fn restart(
            &self,
            cancel: &CancellationToken,
        ) -> Result<Duration, crate::adapters::supervisor::RestartError> {
            self.0.restart(cancel).await
        }

        async fn programs_seen(&self) -> Option<Vec<crate::kernel::resume::Seen>> {
            let up = crate::kernel::resume::Seen {
                up: true,
                started_at_s: self.1,
            };
            Some(vec![up; 3])
        }
    }

    #[tokio::test]
    async fn an_interrupted_restart_made_since_by_supervisord_is_not_made_again() {
        let now_s = |d: u64| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + d
        };
        // Started two seconds after the marker: nothing to do. Started before it: restart.
        for (started_at_s, restarts_made) in [(now_s(2), 0), (now_s(0) - 60, 1)] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(dir.path(), &["--region", "EU"]);
            cfg.env_file.write(cfg.region("EU").unwrap()).unwrap();
            let state = StateDir::open(&dir.path().join("s"));
            state.mark_restart_pending("EU").unwrap();
            let restarts = CountingRestart::default();
            let probe = ScriptedProbe {
                t0: Instant::now(),
                script: vec![],
            };
            let cancel = CancellationToken::new();
            let seen = SeenUp(restarts.clone(), started_at_s);
            let daemon = Daemon::new(cfg, probe, seen, state.clone());
            let task = tokio::spawn(daemon.run(cancel.clone()));
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(restarts.0.lock().unwrap().len(), restarts_made);
            assert_eq!(state.restart_pending(), None);
            cancel.cancel();
            task.await.unwrap();
        }
    }
}
