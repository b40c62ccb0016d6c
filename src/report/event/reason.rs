//! Why the env file names a new region, as `switch` events carry it.

use serde::Serialize;

/// Why the env file names a new region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchReason {
    /// The handler started and the env file did not name the region to use.
    Start,
    /// The active region's outage lasted the threshold.
    Outage,
    /// The preferred region has been healthy for `failback_after`.
    Failback,
    /// Somebody switched by hand (`failover-handler switch` or an edit of the env file).
    Manual,
}

impl SwitchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::Start => "start",
            SwitchReason::Outage => "outage",
            SwitchReason::Failback => "failback",
            SwitchReason::Manual => "manual",
        }
    }
}
