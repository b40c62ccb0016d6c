//! How SREs install failover-handler: the Debian package from `cargo deb` (what it holds, that
//! its binary and config work once extracted, that lintian finds no error, that the man page and
//! the bash completion load), and `failover-handler man` / `completions` for those who build
//! from source.
//!
//! The package test packs the binary this test run built, with `cargo deb --no-build` in a
//! staged target dir, so it costs seconds, not a release build. It is skipped, saying so, where
//! cargo-deb is not installed (`scripts/test.sh --full` installs it, with lintian and man-db).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::CommandFactory;
use failover_handler::config::cli::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_failover-handler");

/// Every file the package installs, as `dpkg-deb -c` lists it.
const INSTALLED: [&str; 13] = [
    "./usr/bin/failover-handler",
    "./usr/share/man/man1/failover-handler.1.gz",
    "./usr/share/bash-completion/completions/failover-handler",
    "./usr/share/zsh/vendor-completions/_failover-handler",
    "./usr/share/fish/vendor_completions.d/failover-handler.fish",
    "./usr/share/doc/failover-handler/README.md",
    "./usr/share/doc/failover-handler/supervisord.conf.example",
    "./usr/share/doc/failover-handler/ext_cloud.env.example",
    "./usr/share/doc/failover-handler/failover-handler.example.toml",
    "./usr/share/doc/failover-handler/copyright",
    "./usr/share/doc/failover-handler/changelog.Debian.gz",
    "./etc/failover-handler.toml",
    "./usr/share/lintian/overrides/failover-handler",
];

/// Runs the binary with none of the product's variables from the host.
fn failover_handler(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("FAILOVER_HANDLER_CONFIG")
        .env_remove("EXT_CLOUD_FAILOVER_LIST")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn has(tool: &str, version_arg: &str) -> bool {
    Command::new(tool)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn man_prints_the_page_in_roff() {
    let out = failover_handler(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH failover-handler 1 "), "{page}");
    assert!(page.contains(".SH COMMANDS"), "{page}");
    assert!(out.stderr.is_empty());
}

/// The page renders at a terminal's width without a warning from troff (a word too long for
/// a line, an unknown request).
#[test]
fn man_page_renders_without_warnings() {
    if !has("groff", "--version") {
        eprintln!("SKIPPED: groff is not installed (apt-get install groff-base)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("failover-handler.1");
    fs::write(&page, failover_handler(&["man"]).stdout).unwrap();
    for width in ["80", "65"] {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(format!("-rLL={width}n"))
            .arg(&page)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "at {width} columns");
    }
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef failover-handler"),
        ("fish", "complete -c failover-handler"),
    ] {
        let out = failover_handler(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("switch"), "{shell}");
        assert!(out.stderr.is_empty(), "{shell}");
    }
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error_on_one_line() {
    let out = failover_handler(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("failover-handler: error: "), "{err}");
    assert!(
        err.contains("'tcsh'") && err.contains("bash, zsh, fish"),
        "{err}"
    );
}

#[test]
fn man_and_completions_need_no_config() {
    let out = Command::new(BIN)
        .args(["man"])
        .env(
            "FAILOVER_HANDLER_CONFIG",
            "/nonexistent/failover-handler.toml",
        )
        .env("EXT_CLOUD_FAILOVER_LIST", "broken")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!out.stdout.is_empty());
}

/// `cargo deb` with the binary of this test run and the files build.rs wrote beside it; returns
/// the .deb, or None (said on stderr) without cargo-deb.
fn build_package(work: &Path) -> Option<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if !Command::new(&cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!(
            "SKIPPED: the package test needs cargo-deb (cargo install --locked cargo-deb); \
             scripts/test.sh --full installs it"
        );
        return None;
    }
    // build.rs writes the man page and completions to ship/ in the profile's directory.
    let profile = Path::new(BIN).parent().unwrap();
    let release = work.join("target").join("release");
    fs::create_dir_all(release.join("ship")).unwrap();
    fs::copy(BIN, release.join("failover-handler")).unwrap();
    for entry in fs::read_dir(profile.join("ship")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), release.join("ship").join(entry.file_name())).unwrap();
    }
    let out_dir = work.join("debian");
    let started = std::time::Instant::now();
    let out = Command::new(&cargo)
        // The release profile strips the binary, so cargo-deb leaves it as it is; this run's
        // binary is a debug one and is stripped on packing, as the release one would be.
        .args(["deb", "--no-build", "--fast", "--strip", "--output"])
        .arg(&out_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", work.join("target"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo deb failed:\n{}",
        text(&out.stderr)
    );
    eprintln!("cargo deb --no-build took {:?}", started.elapsed());
    let debs: Vec<PathBuf> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    Some(debs[0].clone())
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// One test for the whole package, so it is built once.
#[test]
fn the_package_installs_a_working_binary_its_page_completions_docs_and_config() {
    let work = tempfile::tempdir().unwrap();
    let Some(deb) = build_package(work.path()) else {
        return;
    };

    let arch = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .unwrap();
    assert_eq!(
        deb.file_name().unwrap().to_string_lossy(),
        format!(
            "failover-handler_{}-1_{}.deb",
            env!("CARGO_PKG_VERSION"),
            text(&arch.stdout).trim()
        )
    );

    let listing = dpkg_deb(&["-c"], &deb);
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for path in INSTALLED {
        assert!(paths.contains(&path), "{path} missing from:\n{listing}");
    }
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("./usr/bin/failover-handler")),
        "{listing}"
    );

    // A conffile, supervisord recommended, and nothing that runs at install: one maintainer
    // script, postrm, for purge; no service units.
    let control = work.path().join("control");
    let out = Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&control)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(control.join("conffiles")).unwrap(),
        "/etc/failover-handler.toml\n"
    );
    let fields = fs::read_to_string(control.join("control")).unwrap();
    assert!(
        fields.lines().any(|l| l == "Recommends: supervisor"),
        "{fields}"
    );
    for script in ["preinst", "postinst", "prerm"] {
        assert!(!control.join(script).exists(), "{script} in the package");
    }
    assert_eq!(
        fs::read(control.join("postrm")).unwrap_or_else(|e| panic!(
            "no postrm in the package ({e}), so purge keeps {STATE_DIR}"
        )),
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/debian/postrm")).unwrap()
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("systemd") || p.contains("init.d")),
        "{listing}"
    );

    let root = work.path().join("root");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let bin = root.join("usr/bin/failover-handler");
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("failover-handler {}", env!("CARGO_PKG_VERSION"))
    );
    let conffile = root.join("etc/failover-handler.toml");
    let out = Command::new(&bin)
        .arg("config")
        .arg("-c")
        .arg(&conffile)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "config -c /etc/failover-handler.toml: {}",
        text(&out.stderr)
    );

    // What is installed is what the binary prints.
    let page = root.join("usr/share/man/man1/failover-handler.1.gz");
    assert_eq!(gunzip(&page), failover_handler(&["man"]).stdout);
    let bash = root.join("usr/share/bash-completion/completions/failover-handler");
    for (shell, file) in [
        ("bash", bash.clone()),
        (
            "zsh",
            root.join("usr/share/zsh/vendor-completions/_failover-handler"),
        ),
        (
            "fish",
            root.join("usr/share/fish/vendor_completions.d/failover-handler.fish"),
        ),
    ] {
        assert_eq!(
            fs::read(&file).unwrap(),
            failover_handler(&["completions", shell]).stdout,
            "{shell}"
        );
    }
    for doc in [
        "README.md",
        "supervisord.conf.example",
        "ext_cloud.env.example",
        "failover-handler.example.toml",
    ] {
        assert_eq!(
            fs::read(root.join("usr/share/doc/failover-handler").join(doc)).unwrap(),
            fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap(),
            "{doc}"
        );
    }

    let out = Command::new("bash").arg("-n").arg(&bash).output().unwrap();
    assert!(out.status.success(), "bash -n: {}", text(&out.stderr));
    let out = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p failover-handler")
        .arg("bash")
        .arg(&bash)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("failover-handler"),
        "{}",
        text(&out.stdout)
    );

    if has("man", "--version") {
        let out = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("LC_ALL", "C")
            .env("MANWIDTH", "200")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        assert!(out.status.success(), "man -l: {}", text(&out.stderr));
        let rendered = text(&out.stdout);
        for sub in Cli::command().get_subcommands() {
            let name = format!("failover-handler {}", sub.get_name());
            assert!(
                rendered.contains(&name),
                "{name} not in the page:\n{rendered}"
            );
        }
    } else {
        eprintln!("SKIPPED: man -l (man-db is not installed; scripts/test.sh installs it)");
    }

    if has("lintian", "--version") {
        let out = Command::new("lintian").arg(&deb).output().unwrap();
        let report = text(&out.stdout);
        eprintln!("lintian:\n{report}");
        let findings: Vec<&str> = report
            .lines()
            .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
            .collect();
        assert!(findings.is_empty(), "lintian errors or warnings:\n{report}");
    } else {
        eprintln!("SKIPPED: lintian (not installed; scripts/test.sh --full installs it)");
    }

    remove_keeps_state_purge_deletes_it(&deb);
}

const STATE_DIR: &str = "/var/lib/failover-handler";

/// dpkg, retried while another dpkg or apt holds its lock.
fn dpkg(args: &[&str]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let out = Command::new("dpkg")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        let err = text(&out.stderr);
        let locked = err.contains("lock");
        assert!(
            locked && std::time::Instant::now() < deadline,
            "dpkg {args:?}: {err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Installs the package for real, as root on a machine that does not have it: `dpkg -r`
/// keeps the state dir, `dpkg -P` removes it; the machine is left as it was.
fn remove_keeps_state_purge_deletes_it(deb: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: installing the package needs root");
        return;
    }
    let installed = Command::new("dpkg")
        .args(["-s", "failover-handler"])
        .output()
        .unwrap();
    if installed.status.success() || Path::new(STATE_DIR).exists() {
        eprintln!(
            "SKIPPED: install, remove, purge: failover-handler or {STATE_DIR} is already on this machine"
        );
        return;
    }
    /// Purges the package and the state dir however the test ends.
    struct LeaveClean;
    impl Drop for LeaveClean {
        fn drop(&mut self) {
            let _ = Command::new("dpkg")
                .args(["-P", "failover-handler"])
                .output();
            let _ = fs::remove_dir_all(STATE_DIR);
        }
    }
    let _clean = LeaveClean;
    let deb = deb.to_str().unwrap();
    let state = Path::new(STATE_DIR);
    let run = || {
        dpkg(&["-i", deb]);
        fs::create_dir_all(state).unwrap();
        fs::write(state.join("journal.jsonl"), "{}\n").unwrap();
    };
    run();
    dpkg(&["-r", "failover-handler"]);
    let kept = state.join("journal.jsonl").exists();
    run();
    dpkg(&["-P", "failover-handler"]);
    let purged = !state.exists();
    let conffile_gone = !Path::new("/etc/failover-handler.toml").exists();
    assert!(kept, "dpkg -r removed {STATE_DIR}");
    assert!(purged, "dpkg -P left {STATE_DIR}");
    assert!(conffile_gone, "dpkg -P left /etc/failover-handler.toml");
}
