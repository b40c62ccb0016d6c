//! The daemon's side of the pause: what it last saw in the pause file, and which outage's
//! failover it already said it holds back.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::{info, warn};

use crate::adapters::pause::{PAUSE_FILE, Pause, PauseState, read};
use crate::adapters::state::StateDir;
use crate::config::human;
use crate::kernel::region::Region;
use crate::report::journal::timestamp;
use crate::report::observer::Observer;

/// The daemon's side of the pause: what it last saw in the file, and which outage's failover
/// it already said it holds back.
#[derive(Debug)]
pub struct Gate {
    state: StateDir,
    current: Option<Pause>,
    held: Option<Instant>,
}

impl Gate {
    pub fn new(state: StateDir) -> Self {
        Gate {
            state,
            current: None,
            held: None,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.current.is_some()
    }

    /// Re-reads the pause file (off the runtime thread) and reports what changed: paused,
    /// resumed, or ended by itself (then the file is removed).
    pub async fn refresh(&mut self, obs: &mut Observer) {
        let state = self.state.clone();
        let now = SystemTime::now();
        let read = tokio::task::spawn_blocking(move || {
            let s = read(&state, now);
            if let PauseState::Ended(_) = s {
                let _ = state.remove(PAUSE_FILE);
            }
            s
        })
        .await
        .unwrap_or(PauseState::Off);
        let next = match read {
            PauseState::On(p) => Some(p),
            PauseState::Off | PauseState::Ended(_) => None,
        };
        if next == self.current {
            return;
        }
        let ended_by_itself = matches!(read, PauseState::Ended(_))
            || self
                .current
                .is_some_and(|p| p.until.is_some_and(|u| u <= now));
        match next {
            Some(p) => info!(
                event = "paused",
                until = p.until.map(timestamp),
                "Automatic switching paused {}: probing and reporting continue, no automatic failover",
                p.describe(now)
            ),
            None if ended_by_itself => info!(
                event = "pause_ended",
                "The pause ended by itself: automatic switching resumes"
            ),
            None => info!(
                event = "resumed",
                "Automatic switching resumed (`failover-handler resume`)"
            ),
        }
        self.current = next;
        self.held = None;
        obs.pause_changed(next, ended_by_itself, now);
    }

    /// Whether the failover of the outage that began at `outage` must wait: true while paused.
    /// Says so once per outage, with where it would go.
    pub fn hold(
        &mut self,
        outage: Option<Instant>,
        from: &Region,
        to: &Region,
        failed_for: Duration,
        obs: &mut Observer,
    ) -> bool {
        let Some(p) = self.current else {
            return false;
        };
        if self.held != outage || self.held.is_none() {
            self.held = outage;
            let now = SystemTime::now();
            warn!(
                event = "failover_held",
                region = %from.name,
                cloud = %from.cloud,
                to_region = %to.name,
                failed_for_ms = failed_for.as_millis() as u64,
                "Outage of {} ({}) lasted {}: failover to {} held back because automatic switching is paused {}",
                from.name,
                from.cloud,
                human(Duration::from_millis(failed_for.as_millis() as u64)),
                to.name,
                p.describe(now)
            );
            obs.held_back(from, to, failed_for, &p);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::pause::{PauseError, pause, resume};

    /// A probe that always fails, and a restarter that counts.
    struct Down;
    impl crate::adapters::probe::Probe for Down {
        async fn probe(&self) -> crate::adapters::probe::ProbeReport {
            crate::adapters::probe::ProbeReport {
                latency: Duration::from_millis(3),
                result: Err(crate::adapters::probe::ProbeError::new(
                    crate::adapters::probe::ErrorKind::Refused,
                    "refused",
                )),
                bytes_sent: 0,
                bytes_received: 0,
            }
        }
    }

    #[derive(Clone, Default)]
    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl crate::adapters::restart::Restart for Count {
        async fn restart(
            &self,
            _: &tokio_util::sync::CancellationToken,
        ) -> Result<Duration, crate::adapters::restart::RestartError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Duration::from_millis(1))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_daemon_holds_a_failover_while_paused_and_makes_it_on_resume() {
        use clap::Parser;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("ext_cloud.env");
        let state_path = dir.path().join("s");
        let cli = crate::config::cli::Cli::try_parse_from([
            "fh",
            "--env-file",
            env.to_str().unwrap(),
            "--interval",
            "10s",
            "--threshold",
            "1m",
        ])
        .unwrap();
        let vars = |k: &str| {
            k.starts_with("CONNECTION_KEEPALIVE_")
                .then(|| "x".to_string())
        };
        let config =
            std::sync::Arc::new(crate::config::Config::build(&cli.options, &vars).unwrap());
        config.env_file.write(&config.regions[0]).unwrap();
        pause(&state_path, SystemTime::now(), None).unwrap();
        let restarts = Count::default();
        let obs = Observer::new(&config);
        let published = obs.subscribe();
        let daemon = crate::daemon::Daemon::new(
            config.clone(),
            Down,
            restarts.clone(),
            StateDir::open(&state_path),
        )
        .with_observer(obs);
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(daemon.run(cancel.clone()));
        tokio::time::sleep(Duration::from_secs(300)).await;
        let region = || config.env_file.read().unwrap().unwrap().region.unwrap();
        assert_eq!(region(), "NAM");
        assert_eq!(restarts.0.load(Ordering::SeqCst), 0);
        let held = |p: &crate::report::observer::Published| {
            p.history
                .iter()
                .filter(|r| r.event == "failover_held")
                .count()
        };
        assert_eq!(held(&published.borrow()), 1, "said once per outage");
        assert!(published.borrow().snapshot.pause.is_some());

        resume(&state_path, SystemTime::now()).unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(region(), "EU");
        assert_eq!(restarts.0.load(Ordering::SeqCst), 1);
        let p = published.borrow().clone();
        assert!(p.snapshot.pause.is_none());
        let last = p.snapshot.last_switch.clone().unwrap();
        assert_eq!((last.from.as_str(), last.to.as_str()), ("NAM", "EU"));
        cancel.cancel();
        task.await.unwrap();
    }

    #[test]
    fn without_a_state_dir_pause_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("f");
        std::fs::write(&blocker, b"").unwrap();
        assert!(matches!(
            pause(&blocker.join("s"), SystemTime::now(), None),
            Err(PauseError::NoStateDir(_))
        ));
    }
}
