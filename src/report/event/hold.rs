//! A due switch held back (`failover_deferred`, `failback_deferred`): which region stays, for
//! how long it has failed, and why, each reason with its own fields (`reason` names it).

use std::time::Duration;

use serde::Serialize;

use crate::config::duration_text;
use crate::report::event::{Place, human_ms};
use crate::report::fields as f;

/// A switch the policy holds back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deferred {
    /// The region that stays active.
    #[serde(flatten)]
    pub at: Place,
    #[serde(rename = "failing_for_ms", serialize_with = "f::maybe_ms")]
    pub failing_for: Option<Duration>,
    #[serde(flatten)]
    pub reason: DeferReason,
}

/// What holds the switch back; `reason` in every rendering.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DeferReason {
    /// No standby region is healthy: stay and keep probing.
    AllRegionsDown { healthy_standbys: u64 },
    /// Every standby and every reference target fail too: this host's network is at fault.
    HostNetwork {
        #[serde(serialize_with = "f::joined")]
        references: Vec<String>,
    },
    /// Flap damping: too many automatic switches in the last hour.
    Damped {
        cause: &'static str,
        #[serde(flatten, serialize_with = "crate::report::event::place::maybe_to")]
        to: Option<Place>,
        #[serde(rename = "next_allowed_in_ms", serialize_with = "f::ms")]
        next_allowed_in: Duration,
        switches_last_hour: u64,
        max_switches_per_hour: u32,
    },
    /// The local tunnel still refuses after a restart in place and a switch.
    TunnelDown,
    /// Automatic switching is paused (`failover_held` tells an outage's; this is the rest).
    Paused { cause: &'static str },
    /// The host's throughput (`mbps`; none when the download failed) is below `min_mbps`.
    LowThroughput {
        #[serde(flatten, serialize_with = "crate::report::event::place::maybe_to")]
        to: Option<Place>,
        mbps: Option<f64>,
        min_mbps: f64,
        #[serde(rename = "next_measure_in_ms", serialize_with = "f::ms")]
        next_measure_in: Duration,
    },
}

impl Deferred {
    /// The sentence for people.
    pub fn message(&self) -> String {
        let (region, cloud) = (&self.at.region, &self.at.cloud);
        let failing = self
            .failing_for
            .map(|d| format!(" has failed for {} and", human_ms(d)))
            .unwrap_or_default();
        let to = |to: &Option<Place>| to.as_ref().map_or("?".to_string(), |p| p.region.clone());
        match &self.reason {
            DeferReason::AllRegionsDown { .. } => format!(
                "Region {region} ({cloud}){failing} no standby region is healthy: staying on it and probing on; the next line comes when this changes"
            ),
            DeferReason::HostNetwork { references } => format!(
                "Region {region} ({cloud}){failing} every standby region and every reference target ({}) fail too: the fault is this host's network, not the cloud; not failing over",
                references.join(", ")
            ),
            DeferReason::Damped {
                cause,
                to: target,
                next_allowed_in,
                switches_last_hour,
                max_switches_per_hour,
            } => format!(
                "Flap damping holds the {cause} from {region} to {} back: {switches_last_hour} automatic switches in the last hour (at most {max_switches_per_hour}); the next is allowed in {}",
                to(target),
                human_ms(*next_allowed_in)
            ),
            DeferReason::TunnelDown => format!(
                "The local tunnel still refuses after a restart in place and a switch: the fault is on this host, so region {region} stays active until the tunnel answers"
            ),
            DeferReason::Paused { cause } => {
                format!("The {cause} is held: automatic switching is paused")
            }
            DeferReason::LowThroughput {
                to: target,
                mbps,
                min_mbps,
                next_measure_in,
            } => format!(
                "Region {region} ({cloud}){failing} the host's throughput ({}) is below network.min_mbps {min_mbps}: not failing over to {}; measuring again in {}",
                mbps.map_or("unknown".to_string(), |m| format!("{m:.2} Mbit/s")),
                to(target),
                duration_text(*next_measure_in)
            ),
        }
    }
}
