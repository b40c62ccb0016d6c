//! `[failover]`, `[region_checks]` and `[network]`: when to switch, and where to.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::redact;
use crate::config::setting::{
    Doc, Example, Setting, any, at_least_one, duration, no_text, positive, show_duration,
    show_list, show_path, show_text,
};
use crate::config::settings::{Choose, Failback};
use crate::config::values::{parse_choose, parse_failback};

pub static THRESHOLD: Setting<Duration> = Setting {
    doc: Doc {
        key: Some("failover.threshold"),
        flag: Some("--threshold"),
        value: Some("DUR"),
        default: "4m",
        help: "continuous failure (no single success) that counts as an outage",
        ..Doc::NONE
    },
    flag: |o| o.threshold.map(Ok),
    text: no_text,
    file: |f| duration(f.failover.as_ref()?.threshold.as_ref()),
    default: || Duration::from_secs(240),
    check: positive,
    show: |c| show_duration(c.failover.threshold),
};

pub static CHOOSE: Setting<Choose> = Setting {
    doc: Doc {
        key: Some("failover.choose"),
        default: "order",
        help: "`order`: the next healthy standby in order; `latency`: the fastest healthy one",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.failover.as_ref()?.choose.as_deref().map(parse_choose),
    default: || Choose::Order,
    check: any,
    show: |c| {
        show_text(match c.failover.choose {
            Choose::Order => "order",
            Choose::Latency => "latency",
        })
    },
};

pub static FAILBACK: Setting<Failback> = Setting {
    doc: Doc {
        key: Some("failover.failback"),
        default: "never",
        help: "`auto`: back to the preferred region once it has been healthy for `failover.failback_after`; `never`: only by hand",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.failover.as_ref()?.failback.as_deref().map(parse_failback),
    default: || Failback::Never,
    check: any,
    show: |c| {
        show_text(match c.failover.failback {
            Failback::Never => "never",
            Failback::Auto => "auto",
        })
    },
};

pub static FAILBACK_AFTER: Setting<Duration> = Setting {
    doc: Doc {
        key: Some("failover.failback_after"),
        default: "10m",
        help: "how long the preferred region must be healthy before a failback",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| duration(f.failover.as_ref()?.failback_after.as_ref()),
    default: || Duration::from_secs(600),
    check: positive,
    show: |c| show_duration(c.failover.failback_after),
};

pub static MAX_SWITCHES_PER_HOUR: Setting<u32> = Setting {
    doc: Doc {
        key: Some("failover.max_switches_per_hour"),
        default: "6",
        help: "automatic switches allowed within an hour, with a growing hold-down between them",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.failover.as_ref()?.max_switches_per_hour.map(Ok),
    default: || 6,
    check: |n| {
        if *n == 0 {
            return Err(
                "must be at least 1 (use `failover-handler pause` to stop automatic switching)"
                    .to_string(),
            );
        }
        Ok(())
    },
    show: |c| {
        Some(toml::Value::Integer(
            c.failover.max_switches_per_hour.into(),
        ))
    },
};

pub static CHECK_INTERVAL: Setting<Duration> = Setting {
    doc: Doc {
        key: Some("region_checks.interval"),
        default: "10s",
        help: "time between checks of a standby region (only regions with a `health_url`)",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| duration(f.region_checks.as_ref()?.interval.as_ref()),
    default: || Duration::from_secs(10),
    check: positive,
    show: |c| show_duration(c.region_checks.interval),
};

pub static CHECK_TIMEOUT: Setting<Duration> = Setting {
    doc: Doc {
        key: Some("region_checks.timeout"),
        default: "5s",
        help: "one standby check's deadline",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| duration(f.region_checks.as_ref()?.timeout.as_ref()),
    default: || Duration::from_secs(5),
    check: positive,
    show: |c| show_duration(c.region_checks.timeout),
};

pub static RISE: Setting<u32> = Setting {
    doc: Doc {
        key: Some("region_checks.rise"),
        default: "2",
        help: "successes in a row before a region counts as healthy",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.region_checks.as_ref()?.rise.map(Ok),
    default: || 2,
    check: at_least_one,
    show: |c| Some(toml::Value::Integer(c.region_checks.rise.into())),
};

pub static FALL: Setting<u32> = Setting {
    doc: Doc {
        key: Some("region_checks.fall"),
        default: "2",
        help: "failures in a row before a region counts as down",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.region_checks.as_ref()?.fall.map(Ok),
    default: || 2,
    check: at_least_one,
    show: |c| Some(toml::Value::Integer(c.region_checks.fall.into())),
};

pub static REFERENCE: Setting<Vec<String>> = Setting {
    doc: Doc {
        key: Some("network.reference"),
        default: "none",
        help: "targets outside the cloud that always answer (http://, https:// or tcp://host:port); if these fail too, the fault is local and failover waits. Never a placeholder that cannot answer: every outage would look local",
        example: Example::Commented("[\"tcp://<your resolver>:53\"]"),
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.network.as_ref()?.reference.clone().map(Ok),
    default: Vec::new,
    check: any,
    show: |c| {
        // None set: left out, as the example file leaves it.
        if c.network.reference.is_empty() {
            return None;
        }
        show_list(
            c.network
                .reference
                .iter()
                .map(|t| redact::url(&t.to_string())),
        )
    },
};

pub static LATENCY_FILE: Setting<Option<PathBuf>> = Setting {
    doc: Doc {
        key: Some("network.latency_file"),
        default: "none",
        help: "a file that holds the last probe latency in ms, as the old script wrote it",
        example: Example::Value("\"/tmp/latency.txt\""),
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| {
        f.network
            .as_ref()?
            .latency_file
            .clone()
            .map(|p| Ok(Some(p)))
    },
    default: || None,
    check: any,
    show: |c| c.network.latency_file.as_deref().and_then(show_path),
};

pub static THROUGHPUT_URL: Setting<String> = Setting {
    doc: Doc {
        key: Some("network.throughput_url"),
        default: "none",
        help: "a URL to download for a throughput figure; `\"\"`: none",
        example: Example::Value("\"\""),
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.network.as_ref()?.throughput_url.clone().map(Ok),
    default: String::new,
    check: any,
    show: |c| {
        let url = c.network.throughput_url.as_ref()?;
        show_text(redact::url(url.as_str()))
    },
};

pub static MIN_MBPS: Setting<f64> = Setting {
    doc: Doc {
        key: Some("network.min_mbps"),
        default: "0.0",
        help: "below this throughput failover is deferred (needs `network.throughput_url`); `0`: off",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.network.as_ref()?.min_mbps.map(Ok),
    default: || 0.0,
    check: |n| {
        if !n.is_finite() || *n < 0.0 {
            return Err("must be a number >= 0".to_string());
        }
        Ok(())
    },
    show: |c| Some(toml::Value::Float(c.network.min_mbps)),
};
