//! How an [`Event`](crate::report::event::Event)'s fields are rendered, for its `serde`
//! attributes: durations in whole milliseconds (`*_ms`), times as RFC 3339, URLs without
//! credentials, lists comma-separated, and the few fields a variant implies (the `error_kind`
//! of a refusing tunnel). A move's two ends are rendered in `event/place.rs`. The same keys
//! in the log line, the journal, `/history` and Datadog.

use std::time::{Duration, SystemTime};

use serde::Serializer;
use serde::ser::SerializeMap;

use crate::report::journal;

pub type Done<S> = Result<<S as Serializer>::Ok, <S as Serializer>::Error>;

/// Whole milliseconds, as every `*_ms` field carries them.
pub fn whole_ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// A duration as `*_ms`.
pub fn ms<S: Serializer>(d: &Duration, s: S) -> Done<S> {
    s.serialize_u64(whole_ms(*d))
}

/// An optional duration as `*_ms`.
pub fn maybe_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Done<S> {
    match d {
        Some(d) => ms(d, s),
        None => s.serialize_none(),
    }
}

/// A duration in whole seconds.
pub fn secs<S: Serializer>(d: &Duration, s: S) -> Done<S> {
    s.serialize_u64(d.as_secs())
}

/// A time as RFC 3339 with milliseconds, as the journal's own `timestamp`.
pub fn timestamp<S: Serializer>(t: &SystemTime, s: S) -> Done<S> {
    s.serialize_str(&journal::timestamp(*t))
}

pub fn maybe_timestamp<S: Serializer>(t: &Option<SystemTime>, s: S) -> Done<S> {
    match t {
        Some(t) => timestamp(t, s),
        None => s.serialize_none(),
    }
}

/// A URL without its credentials or query values.
pub fn url<S: Serializer>(u: &str, s: S) -> Done<S> {
    s.serialize_str(&crate::config::redact::url(u))
}

/// A list, comma-separated.
pub fn joined<S: Serializer>(items: &[String], s: S) -> Done<S> {
    s.serialize_str(&items.join(","))
}

/// A local tunnel that refuses, when it is the cause: `tunnel`, `error_kind` `tunnel_down`.
pub fn refusing_tunnel<S: Serializer>(address: &Option<String>, s: S) -> Done<S> {
    let mut m = s.serialize_map(None)?;
    if let Some(address) = address {
        m.serialize_entry("error_kind", "tunnel_down")?;
        m.serialize_entry("tunnel", address)?;
    }
    m.end()
}

/// The local tunnel that refuses: `tunnel`, `error_kind` `tunnel_down`.
pub fn refused_at<S: Serializer>(address: &str, s: S) -> Done<S> {
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("error_kind", "tunnel_down")?;
    m.serialize_entry("tunnel", address)?;
    m.end()
}

/// A certificate the probe cannot verify: `error`, `error_kind` `tunnel_misconfigured`.
pub fn misconfigured<S: Serializer>(error: &str, s: S) -> Done<S> {
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("error_kind", "tunnel_misconfigured")?;
    m.serialize_entry("error", error)?;
    m.end()
}

/// The handler's version beside the failover order it starts with.
pub fn version_and_order<S: Serializer>(order: &[String], s: S) -> Done<S> {
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("version", env!("CARGO_PKG_VERSION"))?;
    m.serialize_entry("order", &order.join(","))?;
    m.end()
}

/// How an outage ended: `recovered`, or `switched` away from.
pub fn recovered<S: Serializer>(recovered: &bool, s: S) -> Done<S> {
    s.serialize_str(if *recovered { "recovered" } else { "switched" })
}

/// What a fleet host does when its store is lost: `local` rules, or `keep` its region.
pub fn on_store_loss<S: Serializer>(local: &bool, s: S) -> Done<S> {
    s.serialize_str(if *local { "local" } else { "keep" })
}
