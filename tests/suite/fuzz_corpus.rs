//! The fuzz targets' properties as ordinary tests: each target's check (`fuzz/checks/`, the
//! same code `scripts/fuzz.sh` runs under libFuzzer) on every committed input of that target:
//! its seeds (`fuzz/seeds/<target>`) and every crash ever found (`fuzz/regressions/<target>`),
//! plus, where a fuzzing run left them in this checkout, its corpus (`fuzz/corpus/<target>`)
//! and its crashes (`fuzz/artifacts/<target>`). No libFuzzer build is needed for this.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/checks/config_file.rs"]
mod config_file;
#[path = "../../fuzz/checks/env_file.rs"]
mod env_file;
#[path = "../../fuzz/checks/failover_list.rs"]
mod failover_list;
#[path = "../../fuzz/checks/xmlrpc_response.rs"]
mod xmlrpc_response;

/// The files under `fuzz/<dir>/<target>`, none when that dir is absent.
fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let Ok(entries) = fs::read_dir(&path) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Feeds `check` every input of `target`; fails naming each input that panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(!seeds.is_empty(), "no seeds under fuzz/seeds/{target}");
    let mut all = seeds;
    for dir in ["regressions", "corpus", "artifacts"] {
        all.extend(inputs(dir, target));
    }
    let failed: Vec<String> = all
        .iter()
        .filter(|path| {
            let data = fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs fail the check:\n{}",
        failed.len(),
        all.len(),
        failed.join("\n")
    );
}

#[test]
fn failover_list_inputs_pass_its_fuzz_check() {
    replay("failover_list", failover_list::check);
}

#[test]
fn env_file_inputs_pass_its_fuzz_check() {
    replay("env_file", env_file::check);
}

#[test]
fn config_file_inputs_pass_its_fuzz_check() {
    replay("config_file", config_file::check);
}

#[test]
fn xmlrpc_response_inputs_pass_its_fuzz_check() {
    replay("xmlrpc_response", xmlrpc_response::check);
}
