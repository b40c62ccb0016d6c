//! The rule settings `replay` takes as flags (`--fail-interval`, `--failback`,
//! `--failback-after`, `--max-switches-per-hour`), laid over the merged config: a flag beats
//! the environment, the file and the default, as everywhere, and its errors name the flag.

use crate::config::cli::RuleFlags;
use crate::config::settings::{Config, ConfigError};
use crate::config::values::{failback, positive};

impl Config {
    /// This config with `flags` over it.
    pub fn with_rule_flags(mut self, flags: &RuleFlags) -> Result<Config, ConfigError> {
        if let Some(d) = flags.fail_interval {
            self.probe.fail_interval = positive(d, "--fail-interval")?;
        }
        if let Some(text) = &flags.failback {
            self.failover.failback = failback(text, "--failback")?;
        }
        if let Some(d) = flags.failback_after {
            self.failover.failback_after = positive(d, "--failback-after")?;
        }
        if let Some(n) = flags.max_switches_per_hour {
            if n == 0 {
                return Err(ConfigError::new(
                    "--max-switches-per-hour",
                    "must be at least 1",
                ));
            }
            self.failover.max_switches_per_hour = n;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Failback;
    use std::time::Duration;

    fn config() -> Config {
        crate::testing::config(&["--region", "EU"])
    }

    #[test]
    fn flags_replace_the_rule_settings() {
        let flags = RuleFlags {
            fail_interval: Some(Duration::from_secs(2)),
            failback: Some("auto".into()),
            failback_after: Some(Duration::from_secs(60)),
            max_switches_per_hour: Some(3),
        };
        let c = config().with_rule_flags(&flags).unwrap();
        assert_eq!(c.probe.fail_interval, Duration::from_secs(2));
        assert_eq!(c.failover.failback, Failback::Auto);
        assert_eq!(c.rules().failback_after, Some(Duration::from_secs(60)));
        assert_eq!(c.rules().max_switches_per_hour, 3);
        let none = config().with_rule_flags(&RuleFlags::default()).unwrap();
        assert_eq!(none.failover.failback, Failback::Never);
        assert_eq!(none.probe.fail_interval, none.probe.interval);
    }

    #[test]
    fn a_bad_flag_names_itself() {
        let cases = [
            (
                RuleFlags {
                    failback: Some("sometimes".into()),
                    ..RuleFlags::default()
                },
                "--failback: 'sometimes' is not \"never\" or \"auto\"",
            ),
            (
                RuleFlags {
                    fail_interval: Some(Duration::ZERO),
                    ..RuleFlags::default()
                },
                "--fail-interval: must be greater than zero",
            ),
            (
                RuleFlags {
                    failback_after: Some(Duration::ZERO),
                    ..RuleFlags::default()
                },
                "--failback-after: must be greater than zero",
            ),
            (
                RuleFlags {
                    max_switches_per_hour: Some(0),
                    ..RuleFlags::default()
                },
                "--max-switches-per-hour: must be at least 1",
            ),
        ];
        for (flags, want) in cases {
            let e = config().with_rule_flags(&flags).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
    }
}
