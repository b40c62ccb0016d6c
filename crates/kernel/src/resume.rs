//! A restart that was interrupted (the handler stopped or crashed between its first stop and
//! its last start) leaves a marker, and the next start decides: make the restart again, or see
//! that it was made since by someone else. When supervisord itself was restarted, it started
//! every program with the env file as it now reads; restarting them again would start each
//! twice.

/// One program as supervisord shows it at the handler's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// STARTING or RUNNING: started, and not stopped or exited since.
    pub up: bool,
    /// When it was last started, in whole seconds since the epoch (supervisord's `start`,
    /// truncated, so it may read up to a second early: never late).
    pub started_at_s: u64,
}

/// What to do with an interrupted restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Restart every program: one is down, was started before the interrupted restart began,
    /// or supervisord could not be asked.
    Restart,
    /// Every program is up and was started after the interrupted restart began, so with the
    /// env file it was restarting for: nothing is left to do.
    StartedSince,
}

/// `marked_at_ms`: when the interrupted restart began (unix milliseconds), `None` when unknown;
/// `seen`: every program, `None` when supervisord could not be asked. Only a sure answer skips
/// the restart: a start in the same second as the mark counts as before it.
pub fn resume(marked_at_ms: Option<u64>, seen: Option<&[Seen]>) -> Resume {
    let (Some(marked), Some(seen)) = (marked_at_ms, seen) else {
        return Resume::Restart;
    };
    let since = |p: &Seen| p.up && p.started_at_s.saturating_mul(1000) >= marked;
    if !seen.is_empty() && seen.iter().all(since) {
        Resume::StartedSince
    } else {
        Resume::Restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_every_program_up_and_started_after_the_mark_skips_the_restart() {
        let up = |s| Seen {
            up: true,
            started_at_s: s,
        };
        let down = |s| Seen {
            up: false,
            started_at_s: s,
        };
        let mark = Some(100_500);
        type Case = (&'static str, Option<u64>, Option<Vec<Seen>>, Resume);
        let cases: Vec<Case> = vec![
            (
                "all started after the mark",
                mark,
                Some(vec![up(101), up(102), up(103)]),
                Resume::StartedSince,
            ),
            (
                "one left stopped",
                mark,
                Some(vec![up(101), down(101), up(103)]),
                Resume::Restart,
            ),
            (
                "one started before the mark",
                mark,
                Some(vec![up(99), up(101), up(101)]),
                Resume::Restart,
            ),
            (
                "the mark's own second reads as before it",
                mark,
                Some(vec![up(100), up(101), up(101)]),
                Resume::Restart,
            ),
            (
                "a start on the mark's whole second",
                Some(101_000),
                Some(vec![up(101), up(101), up(101)]),
                Resume::StartedSince,
            ),
            ("supervisord not asked", mark, None, Resume::Restart),
            ("no programs", mark, Some(vec![]), Resume::Restart),
            (
                "no time for the mark",
                None,
                Some(vec![up(101), up(101), up(101)]),
                Resume::Restart,
            ),
        ];
        for (name, marked, seen, want) in cases {
            assert_eq!(resume(marked, seen.as_deref()), want, "{name}");
        }
    }
}
