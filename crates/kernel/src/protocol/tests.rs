//! The protocol's rules, one table each.

use std::time::{Duration, Instant};

use super::*;
use crate::quorum::{Health, Rule, View};

const TTL: Duration = Duration::from_secs(3);

fn order() -> Vec<Region> {
    ["EU", "NAM", "APAC"]
        .iter()
        .map(|n| Region::new(n, &format!("cloud.{}.ext.com", n.to_lowercase())).unwrap())
        .collect()
}

fn member(host: &str, max: usize, local: bool) -> Member {
    Member::new(
        Settings {
            host: host.into(),
            rule: Rule {
                quorum: 0.5,
                min_voters: 2,
                max_moves_per_hour: 6,
                hold_down: Duration::from_secs(1),
            },
            max_restarts: max,
            lease_ttl: TTL,
            local_on_loss: local,
        },
        order(),
    )
}

fn view(region: &str, epoch: u64) -> View {
    View {
        region: region.into(),
        epoch,
        health: Health::Up,
        blames_self: false,
        local_fault: false,
        standbys: Vec::new(),
    }
}

fn active(region: &str, epoch: u64, reason: &str) -> Option<(Active, i64)> {
    let a = Active {
        region: region.into(),
        epoch,
        reason: reason.into(),
        by: "x".into(),
        moves: Vec::new(),
    };
    Some((a, 7))
}

fn slot(epoch: u64, host: &str, order: i64) -> Slot {
    Slot {
        epoch,
        host: host.into(),
        order,
    }
}

#[test]
fn a_holder_acts_only_while_its_lease_holds_with_a_third_to_spare() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    // (time since the last successful keep-alive, holds) for a 3 s lease.
    for (since, holds) in [
        (0, true),
        (1000, true),
        (1999, true),
        (2000, false),
        (5000, false),
    ] {
        assert_eq!(lease_holds(t0, TTL, t0 + ms(since)), holds, "{since} ms");
    }
}

#[test]
fn a_move_waits_in_the_one_line_and_a_lapsed_restart_is_made_again_in_a_slot() {
    let t = Instant::now();
    let here = Here {
        at: 0,
        tunnel_down: false,
    };
    let mut m = member("h1", 1, false);
    let mut snap = Snapshot {
        active: active("NAM", 2, "manual"),
        ..Snapshot::default()
    };
    // Not in line: it queues. Behind another epoch's holder: it waits.
    assert_eq!(m.follow(&snap, here, t), [Effect::Queue(2)]);
    snap.slots = vec![slot(1, "h0", 5), slot(2, "h1", 9)];
    assert_eq!(m.follow(&snap, here, t), []);
    // First in line: it moves, for the manual epoch.
    snap.slots = vec![slot(2, "h1", 9)];
    let follow = Effect::Follow {
        to: 1,
        why: Why::Manual,
        epoch: 2,
    };
    assert_eq!(m.follow(&snap, here, t), [follow]);
    // The lease lapsed mid-restart: the slot is given back and the restart is owed.
    let on_nam = Here { at: 1, ..here };
    assert_eq!(m.restarted(2, on_nam, true, t), [Effect::Release(2)]);
    assert_eq!(m.owed(), Some(Owed::Lapsed));
    assert_eq!(m.epoch().0, 2);
    snap.slots.clear();
    assert_eq!(m.follow(&snap, on_nam, t), [Effect::Queue(2)]);
    snap.slots = vec![slot(2, "h1", 12)];
    let again = Effect::Restart {
        owed: Owed::Lapsed,
        epoch: 2,
    };
    assert_eq!(m.follow(&snap, on_nam, t), [again]);
    assert_eq!(m.restarted(2, on_nam, false, t), [Effect::Release(2)]);
    assert_eq!(m.owed(), None);
}

#[test]
fn a_restart_resumed_after_a_crash_takes_a_slot() {
    let t = Instant::now();
    let here = Here {
        at: 1,
        tunnel_down: false,
    };
    let mut m = member("h1", 1, false);
    m.owe(Owed::Resumed);
    let mut snap = Snapshot {
        active: active("NAM", 2, "outage"),
        slots: vec![slot(2, "h0", 3)],
        ..Snapshot::default()
    };
    assert_eq!(m.follow(&snap, here, t), [Effect::Queue(2)]);
    snap.slots.push(slot(2, "h1", 4));
    assert_eq!(m.follow(&snap, here, t), []);
    snap.slots.remove(0);
    let resumed = Effect::Restart {
        owed: Owed::Resumed,
        epoch: 2,
    };
    assert_eq!(m.follow(&snap, here, t), [resumed]);
}

#[test]
fn a_host_alone_waits_out_a_lease_after_the_last_slot_it_saw_held() {
    let t = Instant::now();
    let here = Here {
        at: 0,
        tunnel_down: true,
    };
    let mut m = member("h1", 1, true);
    let snap = Snapshot {
        views: vec![("h1".into(), view("EU", 1))],
        active: active("EU", 1, "start"),
        slots: vec![slot(1, "h0", 3)],
        ..Snapshot::default()
    };
    let _ = m.round(&snap, here, 1, t, 0);
    assert!(m.withholds());
    // The store goes silent for two leases: lost, and this host acts alone.
    assert!(!m.store_failed(t));
    assert!(m.store_failed(t + 2 * TTL));
    assert!(!m.withholds());
    // (time since the read that showed h0 holding a slot, permit)
    for (since, permit) in [
        (1, Permit::Wait),
        (2999, Permit::Wait),
        (3000, Permit::Alone),
    ] {
        let now = t + Duration::from_millis(since);
        assert_eq!(m.in_place(None, now).0, permit, "{since} ms");
    }
    m.owe(Owed::Resumed);
    assert_eq!(m.owed_alone(t + Duration::from_secs(1)), None);
    assert_eq!(m.owed_alone(t + TTL), Some(Owed::Resumed));
}

#[test]
fn an_empty_store_is_seeded_with_the_latest_decision_a_live_host_remembers() {
    let o = order();
    // (views as region@epoch, the seed)
    type Row<'a> = (Vec<(&'a str, u64)>, (&'a str, u64, &'a str));
    let table: Vec<Row> = vec![
        (vec![("EU", 0), ("EU", 0), ("NAM", 0)], ("EU", 1, "start")),
        (
            vec![("APAC", 0), ("NAM", 0), ("NAM", 0)],
            ("NAM", 1, "start"),
        ),
        (vec![("APAC", 0), ("NAM", 0)], ("NAM", 1, "start")),
        (
            vec![("EU", 3), ("NAM", 5), ("NAM", 0), ("EU", 3)],
            ("NAM", 6, "reseed"),
        ),
        (
            vec![("APAC", 2), ("EU", 0), ("EU", 0)],
            ("APAC", 3, "reseed"),
        ),
        (vec![("MARS", 9), ("EU", 2)], ("EU", 3, "reseed")),
        (
            vec![("APAC", 2), ("NAM", 2), ("NAM", 2)],
            ("NAM", 3, "reseed"),
        ),
    ];
    for (views, (region, epoch, reason)) in table {
        let views: Vec<View> = views.iter().map(|(r, e)| view(r, *e)).collect();
        let refs: Vec<&View> = views.iter().collect();
        let got = seed(&o, &refs, "h0").unwrap();
        assert_eq!(
            (got.region.as_str(), got.epoch, got.reason.as_str()),
            (region, epoch, reason),
            "{views:?}"
        );
    }
    assert_eq!(seed(&o, &[], "h0"), None);
}

#[test]
fn the_leader_seeds_with_the_fleets_region_not_its_own_after_a_third_of_a_lease() {
    let t = Instant::now();
    let mut m = member("h0", 1, false);
    let here = Here {
        at: 2,
        tunnel_down: false,
    };
    m.set_view(view("APAC", 0));
    let snap = Snapshot {
        views: vec![
            ("h0".into(), view("APAC", 0)),
            ("h1".into(), view("NAM", 4)),
            ("h2".into(), view("NAM", 4)),
        ],
        leader: Some(Leader {
            host: "h0".into(),
            term: 10,
            lease: 1,
        }),
        ..Snapshot::default()
    };
    let first = m.round(&snap, here, 1, t, 0);
    assert_eq!(first.last(), Some(&Effect::Leads { term: 10 }), "{first:?}");
    assert_eq!(m.round(&snap, here, 1, t + TTL / 4, 0), []);
    let seeded = m.round(&snap, here, 1, t + TTL / 3, 0);
    let Some(Effect::Seed(a)) = seeded.first() else {
        panic!("{seeded:?}");
    };
    assert_eq!((a.region.as_str(), a.epoch), ("NAM", 5));
}

#[test]
fn a_host_follows_for_the_reason_active_records() {
    for (reason, why) in [
        ("start", Why::Start),
        ("reseed", Why::Start),
        ("outage", Why::Outage),
        ("manual", Why::Manual),
    ] {
        assert_eq!(Why::of(reason), why, "{reason}");
    }
}

#[test]
fn the_store_is_back_at_the_first_read_that_answers_before_the_restart_it_brings() {
    let t = Instant::now();
    let here = Here {
        at: 0,
        tunnel_down: false,
    };
    let mut m = member("h4", 2, true);
    m.set_view(view("EU", 1));
    // Two leases of silence: the store is lost.
    assert!(!m.store_failed(t));
    assert!(m.store_failed(t + 2 * TTL));
    // The first read after it: the fleet moved to NAM, and this host's slot is first in line.
    let snap = Snapshot {
        views: vec![("h4".into(), view("EU", 1))],
        active: active("NAM", 2, "outage"),
        slots: vec![slot(2, "h4", 9)],
        ..Snapshot::default()
    };
    let effects = m.round(&snap, here, 1, t + 3 * TTL, 0);
    assert!(!m.lost(), "{effects:?}");
    assert_eq!(effects.first(), Some(&Effect::StoreBack), "{effects:?}");
    let follow = Effect::Follow {
        to: 1,
        why: Why::Outage,
        epoch: 2,
    };
    assert_eq!(effects.last(), Some(&follow), "{effects:?}");
}

#[test]
fn the_pause_is_told_when_it_changes_and_the_move_it_holds_once_per_epoch() {
    let t = Instant::now();
    let here = Here {
        at: 0,
        tunnel_down: false,
    };
    let mut m = member("h0", 2, false);
    let down = |host: &str| {
        let mut v = view("EU", 1);
        v.health = Health::Outage;
        (host.to_string(), v)
    };
    m.set_view(down("h0").1);
    let by = "paused by h0 at 2026-12-03T18:00:00Z".to_string();
    let mut snap = Snapshot {
        views: vec![
            down("h0"),
            down("h1"),
            down("h2"),
            ("h3".into(), view("EU", 1)),
        ],
        leader: Some(Leader {
            host: "h0".into(),
            term: 10,
            lease: 1,
        }),
        active: active("EU", 1, "start"),
        paused: Some(by.clone()),
        ..Snapshot::default()
    };
    let held = Effect::MovePaused {
        from: "EU".into(),
        to: "NAM".into(),
        epoch: 1,
        paused: by.clone(),
    };
    let first = m.round(&snap, here, 1, t, 0);
    assert_eq!(
        first.first(),
        Some(&Effect::Pause(Some(by.clone()))),
        "{first:?}"
    );
    assert!(first.contains(&held), "{first:?}");
    // Told once: the next rounds under the same pause say nothing.
    let again = m.round(&snap, here, 1, t, 0);
    assert!(
        !again
            .iter()
            .any(|e| matches!(e, Effect::Pause(_) | Effect::MovePaused { .. })),
        "{again:?}"
    );
    // Lifted: said, and the outage moves the fleet.
    snap.paused = None;
    let resumed = m.round(&snap, here, 1, t, 0);
    assert_eq!(resumed.first(), Some(&Effect::Pause(None)), "{resumed:?}");
    assert!(
        resumed.iter().any(|e| matches!(e, Effect::Move { .. })),
        "{resumed:?}"
    );
    // A host that does not lead tells the pause, never the move.
    let mut other = member("h1", 2, false);
    other.set_view(down("h1").1);
    snap.paused = Some(by.clone());
    let told = other.round(&snap, here, 1, t, 0);
    assert_eq!(told.first(), Some(&Effect::Pause(Some(by))), "{told:?}");
    assert!(!told.iter().any(|e| matches!(e, Effect::MovePaused { .. })));
}
