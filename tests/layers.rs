//! The layer rule of docs/architecture.md, checked on the source as the compiler reads it
//! (`layers/check.rs`): no path into a higher layer, no import circle between files, no production
//! function over 80 lines, no clock read, I/O or logging in the kernel (its own crate,
//! `crates/kernel`, whose manifest lists no I/O crate), no logging in the adapters. Each fixture
//! under `layers/fixtures/` is a tiny tree that breaks the rule in one spelling; its `expected`
//! file lists the findings (`rule src/file.rs:line`) the check must report, so a check that cannot
//! fail fails here.

#[path = "layers/check.rs"]
mod check;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use check::{Finding, KERNEL_CRATE, KERNEL_NEVER_DEPENDS_ON, LAYERS, MAX_FN_LINES, Rule, check};

/// The findings of this crate's own tree, read once for all the tests.
fn this_crate() -> &'static [Finding] {
    static FINDINGS: OnceLock<Vec<Finding>> = OnceLock::new();
    FINDINGS.get_or_init(|| check(Path::new(env!("CARGO_MANIFEST_DIR"))))
}

fn shown(findings: &[Finding], rule: Rule) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn no_layer_imports_a_higher_one() {
    let wrong = shown(this_crate(), Rule::Upward);
    assert!(
        wrong.is_empty(),
        "paths against the layer order {}:\n{}",
        LAYERS.join(" < "),
        wrong.join("\n")
    );
}

#[test]
fn no_import_circle() {
    let circles = shown(this_crate(), Rule::Circle);
    assert!(
        circles.is_empty(),
        "modules that import each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn no_production_function_passes_80_lines() {
    let long: Vec<String> = this_crate()
        .iter()
        .filter(|f| f.rule == Rule::Function)
        .map(|f| format!("{} {}", f.key(), f.what))
        .collect();
    assert!(
        long.is_empty(),
        "functions doing more than one job (over {MAX_FN_LINES} lines): split them by job:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_kernel_reads_no_clock_and_does_no_io() {
    let findings = this_crate();
    let mut wrong = shown(findings, Rule::Clock);
    wrong.extend(shown(findings, Rule::Io));
    let kernel = format!("{KERNEL_CRATE}/");
    wrong.extend(
        shown(findings, Rule::Log)
            .into_iter()
            .filter(|f| f.starts_with(&kernel) || f.starts_with("src/kernel/")),
    );
    assert!(
        wrong.is_empty(),
        "the kernel is pure (`now` is handed in, the caller does the I/O and tells):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_kernel_crate_depends_on_no_io_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["Cargo.toml", "src/lib.rs"] {
        let path = root.join(KERNEL_CRATE).join(file);
        assert!(
            path.is_file(),
            "the kernel's crate has no {}",
            path.display()
        );
    }
    let wrong = shown(this_crate(), Rule::Dependency);
    assert!(
        wrong.is_empty(),
        "the kernel's crate may depend on none of {} (the compiler keeps it pure):\n{}",
        KERNEL_NEVER_DEPENDS_ON.join(", "),
        wrong.join("\n")
    );
}

#[test]
fn adapters_do_not_log() {
    let wrong: Vec<String> = shown(this_crate(), Rule::Log)
        .into_iter()
        .filter(|f| f.starts_with("src/adapters/"))
        .collect();
    assert!(
        wrong.is_empty(),
        "adapters return what happened; the caller tells it:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_fixture_fails_with_its_findings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/layers/fixtures");
    let mut fixtures: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    fixtures.sort();
    assert!(
        fixtures.len() >= 12,
        "fixtures missing in {}",
        dir.display()
    );
    let mut wrong = Vec::new();
    for fixture in &fixtures {
        let name = fixture.file_name().unwrap().to_string_lossy();
        let expected: Vec<String> = fs::read_to_string(fixture.join("expected"))
            .unwrap_or_else(|e| panic!("{name}/expected: {e}"))
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        let findings = check(fixture);
        let found: Vec<String> = findings.iter().map(Finding::key).collect();
        if found != expected {
            wrong.push(format!(
                "{name}: expected {expected:?}, found:\n  {}",
                findings
                    .iter()
                    .map(|f| format!("{} ({f})", f.key()))
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
