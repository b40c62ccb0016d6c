//! The checker is able to fail: a clean history passes, and a history that breaks each
//! invariant is reported with that invariant and the moment.

use super::history::{Entry, Rules, Violation, What, check};

const RULES: Rules = Rules {
    cap: 2,
    quorum: 0.5,
    min_voters: 2,
    after_loss: 6.0,
    lag: 1.0,
    decision_window: 3.0,
};

fn store(at: f64, cluster: &str, revision: i64, key: &str, value: Option<String>) -> Entry {
    Entry {
        at,
        what: What::Store {
            cluster: cluster.to_owned(),
            revision,
            key: key.to_owned(),
            value,
        },
    }
}

fn active(region: &str, epoch: u64, reason: &str) -> Option<String> {
    Some(format!(
        r#"{{"region":"{region}","epoch":{epoch},"reason":"{reason}","by":"h0","moves":[]}}"#
    ))
}

fn view(region: &str, epoch: u64, health: &str) -> Option<String> {
    Some(format!(
        r#"{{"region":"{region}","epoch":{epoch},"health":"{health}","blames_self":false,"local_fault":false,"standbys":{{}}}}"#
    ))
}

fn env(at: f64, host: usize, from: &str, to: &str) -> Entry {
    Entry {
        at,
        what: What::EnvWrite {
            host,
            from: from.to_owned(),
            to: to.to_owned(),
        },
    }
}

fn restart(at: f64, end: f64, host: usize) -> Entry {
    Entry {
        at,
        what: What::Restart {
            host,
            end,
            region: "NAM".to_owned(),
        },
    }
}

/// Five hosts on EU; three see its outage; the leader moves the fleet to NAM; every host
/// follows, two at a time; they settle.
fn clean() -> Vec<Entry> {
    let mut h = vec![store(0.0, "c1", 1, "active", active("EU", 1, "start"))];
    for i in 0..5 {
        h.push(store(
            0.1 * i as f64 + 0.1,
            "c1",
            2 + i,
            &format!("views/h{i}"),
            view("EU", 1, "up"),
        ));
    }
    for i in 0..3 {
        h.push(store(
            5.0 + 0.1 * i as f64,
            "c1",
            7 + i,
            &format!("views/h{i}"),
            view("EU", 1, "outage"),
        ));
    }
    h.push(store(6.0, "c1", 10, "active", active("NAM", 2, "outage")));
    for i in 0..5 {
        let at = 6.2 + 0.5 * (i / 2) as f64;
        h.push(env(at, i, "EU", "NAM"));
        h.push(restart(at + 0.01, at + 0.4, i));
    }
    h.push(Entry {
        at: 9.0,
        what: What::Settled {
            regions: (0..5).map(|i| (i, Some("NAM".to_owned()))).collect(),
            active: Some("NAM".to_owned()),
            converged: true,
        },
    });
    h
}

fn invariants(v: &[Violation]) -> Vec<&'static str> {
    v.iter().map(|v| v.invariant).collect()
}

#[test]
fn a_clean_history_has_no_violation() {
    assert_eq!(check(&clean(), &RULES), Vec::new());
}

#[test]
fn an_active_that_is_not_a_new_epoch_breaks_i1() {
    let mut h = clean();
    h.push(store(10.0, "c1", 11, "active", active("APAC", 2, "manual")));
    let v = check(&h, &RULES);
    assert_eq!(invariants(&v), ["I1"], "{v:?}");
    assert_eq!(v[0].at, 10.0);
}

#[test]
fn hosts_that_do_not_converge_break_i1() {
    let mut h = clean();
    h.push(Entry {
        at: 12.0,
        what: What::Settled {
            regions: vec![(0, Some("NAM".into())), (1, Some("EU".into()))],
            active: Some("NAM".into()),
            converged: false,
        },
    });
    assert_eq!(invariants(&check(&h, &RULES)), ["I1"]);
}

#[test]
fn a_move_without_a_quorum_breaks_i2() {
    // Only two of five views say outage: 2 < floor(0.5 x 5) + 1.
    let mut h: Vec<Entry> = clean()
        .into_iter()
        .filter(|e| !matches!(&e.what, What::Store { revision: 9, .. }))
        .collect();
    h.retain(|e| !matches!(e.what, What::Settled { .. }));
    let v = check(&h, &RULES);
    assert_eq!(invariants(&v), ["I2"], "{v:?}");
    assert_eq!(v[0].at, 6.0);
    // Abstaining hosts are no voters: with h3 and h4 blaming their own network, two
    // outage votes of three voters are a quorum.
    let blames =
        r#"{"region":"EU","epoch":1,"health":"failing","blames_self":true,"local_fault":false}"#;
    for e in &mut h {
        if let What::Store { key, value, .. } = &mut e.what
            && (key == "views/h3" || key == "views/h4")
        {
            *value = Some(blames.to_owned());
        }
    }
    assert_eq!(check(&h, &RULES), Vec::new());
}

#[test]
fn a_quorum_gone_long_before_the_move_breaks_i2() {
    // The three outage views turn up again at 5.5 s; the move comes 4 s later.
    let mut h: Vec<Entry> = clean();
    for e in &mut h {
        if let What::Store { key, .. } = &e.what
            && key == "active"
            && e.at == 6.0
        {
            e.at = 9.5;
        }
        if let What::Store { revision, .. } = &mut e.what
            && *revision == 10
        {
            *revision = 13;
        }
    }
    h.retain(|e| !matches!(e.what, What::EnvWrite { .. } | What::Restart { .. }));
    h.push(store(5.5, "c1", 10, "views/h0", view("EU", 1, "up")));
    h.push(store(5.6, "c1", 11, "views/h1", view("EU", 1, "up")));
    let v = check(&h, &RULES);
    assert_eq!(invariants(&v), ["I2"], "{v:?}");
    // A move 2 s after the quorum went is one the leader read before: no violation.
    for e in &mut h {
        if let What::Store { revision: 13, .. } = e.what {
            e.at = 7.5;
        }
    }
    assert_eq!(check(&h, &RULES), Vec::new());
}

#[test]
fn a_switch_no_decision_explains_breaks_i2() {
    let mut h = clean();
    h.push(env(20.0, 3, "NAM", "APAC"));
    let v = check(&h, &RULES);
    assert_eq!(invariants(&v), ["I2"], "{v:?}");
    assert!(v[0].what.contains("h3 switched NAM -> APAC"), "{v:?}");
}

#[test]
fn a_move_while_paused_breaks_i2() {
    let mut h = clean();
    h.push(store(4.0, "c1", 6, "pause", Some(r#"{"by":"h0"}"#.into())));
    let v = check(&h, &RULES);
    assert_eq!(invariants(&v), ["I2"], "{v:?}");
    assert!(v[0].what.contains("paused"));
}

#[test]
fn three_restarts_at_once_with_a_cap_of_two_break_i3() {
    let mut h = clean();
    h.push(restart(6.3, 6.5, 4));
    let v = check(&h, &RULES);
    assert_eq!(invariants(&v), ["I3"], "{v:?}");
    assert!(v[0].what.contains("3 restarts at once"), "{v:?}");
}

#[test]
fn a_second_move_for_one_epoch_breaks_i4() {
    let mut h = clean();
    h.push(env(7.5, 0, "NAM", "NAM"));
    assert_eq!(invariants(&check(&h, &RULES)), ["I4"]);
}

#[test]
fn hosts_finishing_the_last_decision_through_a_reseeded_active_break_nothing() {
    // A wipe lands while the fleet is moving to NAM: two hosts have moved, three have not.
    // The store is re-seeded with NAM, the last decision, at a higher epoch, and the three
    // finish the move: what they would have done without the wipe.
    let mut h = clean();
    h.truncate(h.len() - 1);
    h.retain(|e| !matches!(&e.what, What::EnvWrite { host, .. } | What::Restart { host, .. } if *host >= 2));
    h.push(Entry {
        at: 7.0,
        what: What::StoreDown,
    });
    h.push(Entry {
        at: 8.0,
        what: What::StoreUp,
    });
    h.push(store(8.5, "c2", 1, "active", active("NAM", 3, "reseed")));
    for i in 2..5 {
        let at = 9.0 + 0.5 * (i - 2) as f64;
        h.push(env(at, i, "EU", "NAM"));
        h.push(restart(at + 0.01, at + 0.4, i));
    }
    assert_eq!(invariants(&check(&h, &RULES)), Vec::<&str>::new());
    // Re-seeded with another region than the last decision, the same moves break I5.
    let mut h = clean();
    h.truncate(h.len() - 1);
    h.retain(|e| !matches!(&e.what, What::EnvWrite { host, .. } | What::Restart { host, .. } if *host >= 2));
    h.push(store(8.5, "c2", 1, "active", active("APAC", 3, "reseed")));
    h.push(env(9.0, 2, "EU", "APAC"));
    assert_eq!(invariants(&check(&h, &RULES)), ["I5"]);
}

#[test]
fn a_switch_caused_by_a_wipe_or_a_lost_store_breaks_i5() {
    // After a wipe the new cluster's active says EU (reason start): a host that follows it
    // back switches because of the wipe.
    let mut h = clean();
    h.push(Entry {
        at: 20.0,
        what: What::StoreDown,
    });
    h.push(Entry {
        at: 21.0,
        what: What::StoreUp,
    });
    h.push(store(22.0, "c2", 1, "active", active("EU", 1, "start")));
    h.push(env(22.5, 2, "NAM", "EU"));
    let v = check(&h, &RULES);
    assert_eq!(invariants(&v), ["I5"], "{v:?}");
    // While the store is lost, any switch is one.
    let mut h = clean();
    h.push(Entry {
        at: 20.0,
        what: What::StoreDown,
    });
    h.push(env(24.0, 1, "NAM", "APAC"));
    assert_eq!(invariants(&check(&h, &RULES)), ["I5"]);
}
