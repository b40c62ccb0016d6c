//! Small pieces of the merge: which source a value came from, and single values checked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::config::settings::{Choose, ConfigError, Failback};

pub(super) fn positive(d: Duration, origin: &str) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::new(origin, "must be greater than zero"));
    }
    Ok(d)
}

/// `never` or `auto`, as `failover.failback` and `--failback` take it.
pub(super) fn failback(text: &str, origin: &str) -> Result<Failback, ConfigError> {
    parse_failback(text).map_err(|e| ConfigError::new(origin, e))
}

pub(super) fn parse_failback(text: &str) -> Result<Failback, String> {
    match text {
        "never" => Ok(Failback::Never),
        "auto" => Ok(Failback::Auto),
        other => Err(format!("'{other}' is not \"never\" or \"auto\"")),
    }
}

/// `order` or `latency`, as `failover.choose` takes it.
pub(super) fn parse_choose(text: &str) -> Result<Choose, String> {
    match text {
        "order" => Ok(Choose::Order),
        "latency" => Ok(Choose::Latency),
        other => Err(format!("'{other}' is not \"order\" or \"latency\"")),
    }
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
}

/// `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`, `:9464` or `9464` (the last three on loopback).
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix(':'))
        .unwrap_or(text);
    port.parse::<u16>()
        .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
        .map_err(|_| format!("'{text}' is not an address like 127.0.0.1:9464 or a port"))
}
