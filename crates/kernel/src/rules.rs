//! The policy's settings: the threshold and the rules beyond it. The config layer builds them;
//! the kernel never sees the config itself.

use std::time::Duration;

/// How the next region is chosen when the active one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choose {
    Order,
    Latency,
}

/// Whether the preferred region takes traffic back once it is healthy again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failback {
    Never,
    Auto,
}

/// The rules beyond the threshold, from the config.
#[derive(Debug, Clone)]
pub struct Rules {
    pub threshold: Duration,
    pub choose: Choose,
    /// Fail back to the preferred region (index 0) once it has been up this long; `None`: never.
    pub failback_after: Option<Duration>,
    pub max_switches_per_hour: u32,
    /// The throughput gate: below this many kbit/s an outage failover is deferred.
    pub min_kbps: Option<u64>,
    /// After a throughput below the gate, how long before it is measured again.
    pub gate_retry: Duration,
}

impl Rules {
    /// The plain rule: threshold and order, default damping, nothing else.
    pub fn plain(threshold: Duration) -> Self {
        Rules {
            threshold,
            choose: Choose::Order,
            failback_after: None,
            max_switches_per_hour: 6,
            min_kbps: None,
            gate_retry: threshold.min(Duration::from_secs(60)),
        }
    }
}
