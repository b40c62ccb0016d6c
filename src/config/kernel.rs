//! The kernel's own settings, built from the config: the kernel never sees `Config`.

use crate::config::settings::Config;
use crate::kernel::policy::Policy;
use crate::kernel::rules::{Failback, Rules};
use crate::kernel::standby::Standbys;

impl Config {
    /// The policy's rules: threshold, choice, failback, damping and the throughput gate.
    pub fn rules(&self) -> Rules {
        let gate = self.network.throughput_url.is_some() && self.network.min_mbps > 0.0;
        Rules {
            choose: self.failover.choose,
            failback_after: (self.failover.failback == Failback::Auto && self.preferred.is_some())
                .then_some(self.failover.failback_after),
            max_switches_per_hour: self.failover.max_switches_per_hour,
            min_kbps: gate.then(|| (self.network.min_mbps * 1000.0).ceil() as u64),
            ..Rules::plain(self.failover.threshold)
        }
    }

    /// A policy with all the rules of this config, starting on region `active`.
    pub fn policy(&self, active: usize) -> Policy {
        let checked: Vec<bool> = self
            .regions
            .iter()
            .map(|r| r.health_url.is_some())
            .collect();
        let c = &self.region_checks;
        let standbys = Standbys::new(&checked, self.network.reference.len(), c.rise, c.fall);
        Policy::with_rules(self.rules(), standbys, active)
    }
}
