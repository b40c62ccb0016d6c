//! Durations and times as people read them, in messages and in `config`: `duration_text`,
//! `threshold_text`, `timestamp`.

use std::time::{Duration, SystemTime};

/// Humantime text of a duration, e.g. `4m` or `1s 500ms`, to the nearest millisecond
/// (never `0s` for a duration that is not zero): people need no microseconds.
pub fn duration_text(d: Duration) -> String {
    let ms = d.as_nanos().saturating_add(500_000) / 1_000_000;
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    let ms = if d.is_zero() { 0 } else { ms.max(1) };
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

/// The threshold as the old script wrote it: `4 min` for whole minutes, else humantime.
pub fn threshold_text(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 && secs > 0 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        duration_text(d)
    }
}

/// RFC 3339 in UTC with milliseconds, as the log lines write it.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_text_matches_the_old_script() {
        assert_eq!(threshold_text(Duration::from_secs(240)), "4 min");
        assert_eq!(threshold_text(Duration::from_secs(60)), "1 min");
        assert_eq!(threshold_text(Duration::from_secs(90)), "1m 30s");
        assert_eq!(threshold_text(Duration::from_secs(1)), "1s");
        assert_eq!(threshold_text(Duration::from_millis(1500)), "1s 500ms");
    }

    #[test]
    fn durations_are_shown_to_the_millisecond() {
        assert_eq!(duration_text(Duration::new(6, 263_271_399)), "6s 263ms");
        assert_eq!(duration_text(Duration::new(1, 999_600_000)), "2s");
        assert_eq!(duration_text(Duration::from_micros(300)), "1ms");
        assert_eq!(duration_text(Duration::ZERO), "0s");
        assert_eq!(duration_text(Duration::from_secs(240)), "4m");
    }
}
