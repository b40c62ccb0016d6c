//! Durations as people read them, in messages and in `config`.

use std::time::{Duration, SystemTime};

/// Humantime text of a duration, e.g. `4m` or `1s 500ms`.
pub fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The threshold as the old script wrote it: `4 min` for whole minutes, else humantime.
pub fn threshold_text(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 && secs > 0 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        human(d)
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
}
