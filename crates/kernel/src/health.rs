//! One checked target's health, as pingora's health check keeps it: a tiny kernel that takes
//! each check result and says whether the verdict flipped, with separate thresholds for coming
//! up (`rise` successes in a row) and going down (`fall` failures in a row), and a smoothed
//! latency (EWMA) of its successful checks. Pure: `now` is handed in.

use std::time::{Duration, Instant};

/// Weight of the newest sample in the smoothed latency.
const EWMA_WEIGHT: f64 = 0.3;

/// What the checks say about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough results yet for either threshold.
    Unknown,
    Up,
    Down,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unknown => "unknown",
            Verdict::Up => "up",
            Verdict::Down => "down",
        }
    }
}

/// The health of one target: verdict, the runs that lead to the next flip, smoothed latency.
#[derive(Debug, Clone)]
pub struct Health {
    rise: u32,
    fall: u32,
    verdict: Verdict,
    /// Consecutive results that disagree with the verdict (or, while unknown, the current run).
    run: u32,
    run_ok: bool,
    /// When the verdict last changed.
    since: Option<Instant>,
    latency_ms: Option<f64>,
}

impl Health {
    /// `rise` and `fall` of at least one (zero is taken as one).
    pub fn new(rise: u32, fall: u32) -> Self {
        Health {
            rise: rise.max(1),
            fall: fall.max(1),
            verdict: Verdict::Unknown,
            run: 0,
            run_ok: false,
            since: None,
            latency_ms: None,
        }
    }

    /// Takes one check result seen at `now`; true when the verdict flipped.
    pub fn observe(&mut self, now: Instant, ok: bool, latency: Duration) -> bool {
        if ok {
            let sample = latency.as_secs_f64() * 1000.0;
            self.latency_ms = Some(match self.latency_ms {
                Some(old) => old + EWMA_WEIGHT * (sample - old),
                None => sample,
            });
        }
        let agrees = matches!(
            (self.verdict, ok),
            (Verdict::Up, true) | (Verdict::Down, false)
        );
        if agrees {
            self.run = 0;
            return false;
        }
        if self.run_ok == ok {
            self.run += 1;
        } else {
            self.run_ok = ok;
            self.run = 1;
        }
        let (needed, next) = if ok {
            (self.rise, Verdict::Up)
        } else {
            (self.fall, Verdict::Down)
        };
        if self.run < needed {
            return false;
        }
        self.verdict = next;
        self.since = Some(now);
        self.run = 0;
        true
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Since when the target has been up, if it is.
    pub fn up_since(&self) -> Option<Instant> {
        self.since.filter(|_| self.verdict == Verdict::Up)
    }

    /// The smoothed latency of the successful checks, if there was one.
    pub fn latency(&self) -> Option<Duration> {
        self.latency_ms
            .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds results one per second and returns the verdict after each.
    fn verdicts(rise: u32, fall: u32, results: &str) -> String {
        let mut h = Health::new(rise, fall);
        let t0 = Instant::now();
        results
            .chars()
            .enumerate()
            .map(|(i, c)| {
                h.observe(t0 + Duration::from_secs(i as u64), c == '+', Duration::ZERO);
                match h.verdict() {
                    Verdict::Unknown => '?',
                    Verdict::Up => 'U',
                    Verdict::Down => 'D',
                }
            })
            .collect()
    }

    #[test]
    fn rise_and_fall_table() {
        // (rise, fall, results: + ok / - failed, verdict after each)
        let cases = [
            (1, 1, "+-+-", "UDUD"),
            (2, 2, "+", "?"),
            (2, 2, "++", "?U"),
            (2, 2, "--", "?D"),
            (2, 2, "+-+-", "????"),
            (2, 2, "++-+--", "?UUUUD"),
            (2, 3, "++--+---", "?UUUUUUD"),
            (3, 1, "---+++", "DDDDDU"),
            (3, 1, "+++-++-", "??UDDDD"),
            (2, 2, "++-+-+", "?UUUUU"),
        ];
        for (rise, fall, results, want) in cases {
            assert_eq!(
                verdicts(rise, fall, results),
                want,
                "rise {rise} fall {fall} results {results}"
            );
        }
    }

    #[test]
    fn observe_says_when_it_flipped_and_since_when() {
        let mut h = Health::new(2, 2);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert!(!h.observe(at(0), true, Duration::ZERO));
        assert!(h.observe(at(1), true, Duration::ZERO));
        assert_eq!(h.up_since(), Some(at(1)));
        assert!(!h.observe(at(2), true, Duration::ZERO));
        assert_eq!(h.up_since(), Some(at(1)), "still up since the flip");
        assert!(!h.observe(at(3), false, Duration::ZERO));
        assert!(h.observe(at(4), false, Duration::ZERO));
        assert_eq!(h.up_since(), None);
    }

    #[test]
    fn latency_is_smoothed_over_successes_only() {
        let mut h = Health::new(1, 1);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(h.latency(), None);
        h.observe(t0, true, ms(100));
        assert_eq!(h.latency(), Some(ms(100)));
        h.observe(t0, false, ms(5000));
        assert_eq!(
            h.latency(),
            Some(ms(100)),
            "a failure says nothing of latency"
        );
        h.observe(t0, true, ms(200));
        let got = h.latency().unwrap().as_secs_f64() * 1000.0;
        assert!((got - 130.0).abs() < 0.01, "{got}");
        for _ in 0..50 {
            h.observe(t0, true, ms(20));
        }
        let got = h.latency().unwrap().as_secs_f64() * 1000.0;
        assert!((got - 20.0).abs() < 0.1, "{got}");
    }
}
