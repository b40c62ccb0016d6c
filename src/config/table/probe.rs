//! `[probe]`: the health probe of the active region, through the local tunnel.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::redact;
use crate::config::setting::{
    Doc, Example, Setting, any, duration, no_text, positive, show_duration, show_path, show_text,
};
use crate::config::settings::DEFAULT_PROBE_URL;

pub static PROBE_URL: Setting<String> = Setting {
    doc: Doc {
        key: Some("probe.url"),
        flag: Some("--probe-url"),
        value: Some("URL"),
        default: DEFAULT_PROBE_URL,
        help: "health endpoint through the tunnel; `{org_id}` and `{txn_id}` come from `CONNECTION_KEEPALIVE_ORG_ID` and `CONNECTION_KEEPALIVE_TXN_ID`",
        ..Doc::NONE
    },
    flag: |o| o.probe_url.clone().map(Ok),
    text: no_text,
    file: |f| f.probe.as_ref()?.url.clone().map(Ok),
    default: || DEFAULT_PROBE_URL.to_string(),
    check: any,
    show: |c| show_text(redact::url(&c.probe.url_template)),
};

pub static INTERVAL: Setting<Duration> = Setting {
    doc: Doc {
        key: Some("probe.interval"),
        flag: Some("--interval"),
        value: Some("DUR"),
        default: "10s",
        help: "time between probes",
        ..Doc::NONE
    },
    flag: |o| o.interval.map(Ok),
    text: no_text,
    file: |f| duration(f.probe.as_ref()?.interval.as_ref()),
    default: || Duration::from_secs(10),
    check: positive,
    show: |c| show_duration(c.probe.interval),
};

pub static FAIL_INTERVAL: Setting<Option<Duration>> = Setting {
    doc: Doc {
        key: Some("probe.fail_interval"),
        default: "the interval",
        help: "time between probes while failing: faster confirms an outage sooner",
        example: Example::Value("\"2s\""),
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| duration(f.probe.as_ref()?.fail_interval.as_ref()).map(|d| d.map(Some)),
    default: || None,
    check: |d| d.as_ref().map_or(Ok(()), positive),
    show: |c| show_duration(c.probe.fail_interval),
};

pub static TIMEOUT: Setting<Duration> = Setting {
    doc: Doc {
        key: Some("probe.timeout"),
        flag: Some("--timeout"),
        value: Some("DUR"),
        default: "5s",
        help: "one probe's deadline (connect + TLS + response)",
        ..Doc::NONE
    },
    flag: |o| o.timeout.map(Ok),
    text: no_text,
    file: |f| duration(f.probe.as_ref()?.timeout.as_ref()),
    default: || Duration::from_secs(5),
    check: positive,
    show: |c| show_duration(c.probe.timeout),
};

pub static STARTUP_GRACE: Setting<Duration> = Setting {
    doc: Doc {
        key: Some("probe.startup_grace"),
        flag: Some("--startup-grace"),
        value: Some("DUR"),
        default: "10s",
        help: "probe failures this soon after start are told at INFO, not WARN, while the tunnel comes up (`0s`: none); the outage clock runs all the same",
        ..Doc::NONE
    },
    flag: |o| o.startup_grace.map(Ok),
    text: no_text,
    file: |f| duration(f.probe.as_ref()?.startup_grace.as_ref()),
    default: || Duration::from_secs(10),
    check: any,
    show: |c| show_duration(c.probe.startup_grace),
};

pub static CA_CERT: Setting<Option<PathBuf>> = Setting {
    doc: Doc {
        key: Some("probe.ca_cert"),
        flag: Some("--ca-cert"),
        value: Some("PEM"),
        default: "system roots",
        help: "trust this CA or this exact certificate (the tunnel's own, self-signed ones included); the file must exist; see [TLS and tunnels](#tls-and-tunnels)",
        example: Example::Commented("\"/etc/stunnel/stunnel.pem\""),
        ..Doc::NONE
    },
    flag: |o| o.ca_cert.clone().map(|p| Ok(Some(p))),
    text: no_text,
    file: |f| f.probe.as_ref()?.ca_cert.clone().map(|p| Ok(Some(p))),
    default: || None,
    check: any,
    show: |c| c.probe.ca_cert.as_deref().and_then(show_path),
};

pub static TLS_SERVER_NAME: Setting<Option<String>> = Setting {
    doc: Doc {
        key: Some("probe.tls_server_name"),
        flag: Some("--tls-server-name"),
        value: Some("NAME"),
        default: "the URL's host",
        help: "the name sent as SNI and verified; `{cloud}` stands for the active region's cloud host (a transparent forward)",
        example: Example::Commented("\"{cloud}\""),
        ..Doc::NONE
    },
    flag: |o| o.tls_server_name.clone().map(|n| Ok(Some(n))),
    text: no_text,
    file: |f| {
        f.probe
            .as_ref()?
            .tls_server_name
            .clone()
            .map(|n| Ok(Some(n)))
    },
    default: || None,
    check: any,
    show: |c| c.probe.tls_server_name.clone().and_then(show_text),
};

pub static INSECURE: Setting<bool> = Setting {
    doc: Doc {
        key: Some("probe.insecure"),
        flag: Some("--insecure"),
        default: "off",
        help: "skip TLS verification (a warning at start; an error together with `--ca-cert`)",
        ..Doc::NONE
    },
    flag: |o| o.insecure.then_some(Ok(true)),
    text: no_text,
    file: |f| f.probe.as_ref()?.insecure.map(Ok),
    default: || false,
    check: any,
    show: |c| Some(toml::Value::Boolean(c.probe.insecure)),
};
