//! Another local user against the operator: a planted daemon listing must not lend its config
//! (and so its supervisorctl) to a bare `switch`, a planted symlink must not make the handler
//! write where the attacker points, and a second daemon must not share a state dir. The tests
//! run as root and play the other user with uid 65534 (`nobody`).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{
    Cmd, DEFAULT_LIST, FakeTunnel, Output, TestDir, env_for, in_region, runtime_dir,
};

const WAIT: Duration = Duration::from_secs(10);
const NOBODY: u32 = 65534;

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The operator's real daemon (started as `FAILOVER_HANDLER_CONFIG=… failover-handler run`)
/// and an attacker's config whose supervisorctl is a script that leaves `pwned` behind.
struct Attack {
    dir: TestDir,
    _tunnel: FakeTunnel,
    daemon: crate::support::Daemon,
    evil: PathBuf,
}

impl Attack {
    fn new() -> Attack {
        let (dir, tunnel) = in_region("NAM");
        let p = |p: PathBuf| p.display().to_string();
        let good = dir.write_file(
            "good.toml",
            &format!(
                "state_dir = \"{}\"\n[env_file]\npath = \"{}\"\n[probe]\nurl = \"{}\"\nca_cert = \"{}\"\ninterval = \"100ms\"\ntimeout = \"400ms\"\n[failover]\nthreshold = \"1h\"\n[restart]\nsupervisorctl = \"{}\"\n",
                p(dir.state_dir()),
                p(dir.env_file()),
                tunnel.url(),
                p(dir.ca_pem()),
                p(dir.supervisorctl()),
            ),
        );
        let daemon = Cmd::bare(&dir)
            .env("FAILOVER_HANDLER_CONFIG", &p(good))
            .spawn_daemon();
        daemon.wait_for_event("env_file_current", WAIT);
        let attacker = dir.path().join("attacker");
        fs::create_dir(&attacker).unwrap();
        let pwned = dir.path().join("pwned");
        let script = dir.write_script("evil.sh", &format!("touch '{}'", pwned.display()));
        let evil = dir.write_file(
            "attacker/evil.toml",
            &format!(
                "state_dir = \"{a}/state\"\n[env_file]\npath = \"{a}/ext_cloud.env\"\n[restart]\nsupervisorctl = \"{s}\"\n",
                a = attacker.display(),
                s = script.display()
            ),
        );
        chown(&attacker, NOBODY);
        Attack {
            dir,
            _tunnel: tunnel,
            daemon,
            evil,
        }
    }

    /// The attacker's listing for `pid` running with `args`, lending the attacker's config.
    fn entry(&self, pid: u32, args: &[&str]) -> String {
        let listed = runtime_dir(&self.dir).join(format!("{}.json", self.daemon.pid()));
        let mut v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(listed).unwrap()).unwrap();
        v["pid"] = pid.into();
        v["args"] = args.into();
        v["env"]["FAILOVER_HANDLER_CONFIG"] = self.evil.display().to_string().into();
        v["env"]["EXT_CLOUD_FAILOVER_LIST"] = DEFAULT_LIST.into();
        v.to_string()
    }

    /// The operator's real daemon, listed by the attacker with the attacker's config.
    fn piggyback(&self) -> String {
        self.entry(self.daemon.pid(), &["run"])
    }

    /// A listing dir of the operator's (root, 0700): `<name>/failover-handler`.
    fn trusted_dir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name).join("failover-handler");
        fs::create_dir_all(&d).unwrap();
        chmod(&d, 0o700);
        d
    }

    /// The operator's bare `switch EU`, finding daemons in `listing` (as its runtime dir,
    /// and as `$XDG_RUNTIME_DIR/failover-handler`). Its own failover list has no EU: only a
    /// borrowed one has, so a refusal leaves it nothing to switch to.
    fn switch(&self, listing: &Path) -> Output {
        assert!(listing.ends_with("failover-handler"));
        let base = listing.parent().unwrap().display().to_string();
        Cmd::bare(&self.dir)
            .sub(&["switch", "EU"])
            .env("XDG_RUNTIME_DIR", &base)
            .env(
                "FAILOVER_HANDLER_RUNTIME_DIR",
                &listing.display().to_string(),
            )
            .env(
                "EXT_CLOUD_FAILOVER_LIST",
                "NAM=cloud.nam.ext.com,APAC=cloud.apac.ext.com",
            )
            .output()
    }

    /// The switch ran none of the attacker's config, and said on stderr what it skipped.
    #[track_caller]
    fn assert_refused(&self, out: &Output, listing: &Path, why: &str) {
        assert!(!self.dir.path().join("pwned").exists(), "{out:#?}");
        assert!(
            !self.dir.path().join("attacker/ext_cloud.env").exists(),
            "{out:#?}"
        );
        assert_eq!(out.code, Some(2), "{out:#?}");
        let skipped = out
            .stderr
            .lines()
            .find(|l| l.contains("skipped"))
            .unwrap_or_else(|| panic!("no line says what was skipped: {out:#?}"));
        assert!(skipped.starts_with("failover-handler: "), "{out:#?}");
        assert!(skipped.contains(&listing.display().to_string()), "{out:#?}");
        assert!(skipped.contains(why), "{out:#?}");
        assert!(
            out.stderr.contains("no running daemon is listed in"),
            "{out:#?}"
        );
    }
}

#[test]
fn a_listing_dir_of_another_user_is_skipped() {
    let a = Attack::new();
    let listing = a.dir.path().join("attacker/failover-handler");
    fs::create_dir(&listing).unwrap();
    chmod(&listing, 0o700);
    let entry = listing.join(format!("{}.json", a.daemon.pid()));
    fs::write(&entry, a.piggyback()).unwrap();
    chown(&entry, NOBODY);
    chown(&listing, NOBODY);
    let out = a.switch(&listing);
    a.assert_refused(&out, &listing, "owned by uid 65534");
}

#[test]
fn a_world_writable_listing_dir_is_skipped() {
    let a = Attack::new();
    let listing = a.trusted_dir("shared");
    chmod(&listing, 0o1777);
    fs::write(
        listing.join(format!("{}.json", a.daemon.pid())),
        a.piggyback(),
    )
    .unwrap();
    let out = a.switch(&listing);
    a.assert_refused(&out, &listing, "writable by group or others");
}

#[test]
fn a_symlinked_listing_dir_is_skipped() {
    let a = Attack::new();
    let target = a.trusted_dir("elsewhere");
    fs::write(
        target.join(format!("{}.json", a.daemon.pid())),
        a.piggyback(),
    )
    .unwrap();
    let listing = a.dir.path().join("attacker/failover-handler");
    symlink(&target, &listing).unwrap();
    let out = a.switch(&listing);
    a.assert_refused(&out, &listing, "symbolic link");
}

#[test]
fn a_symlinked_or_foreign_entry_is_skipped() {
    let a = Attack::new();
    let planted = a.dir.path().join("attacker/entry.json");
    fs::write(&planted, a.piggyback()).unwrap();
    chown(&planted, NOBODY);
    let listing = a.trusted_dir("listing");
    let name = format!("{}.json", a.daemon.pid());
    symlink(&planted, listing.join(&name)).unwrap();
    let out = a.switch(&listing);
    a.assert_refused(&out, &listing, "symbolic link");

    fs::remove_file(listing.join(&name)).unwrap();
    fs::copy(&planted, listing.join(&name)).unwrap();
    chown(&listing.join(&name), NOBODY);
    let out = a.switch(&listing);
    a.assert_refused(&out, &listing, "owned by uid 65534");
}

/// Kills and reaps a process the test started, on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_entry_for_a_process_that_is_not_this_binary_is_skipped() {
    let a = Attack::new();
    let listing = a.trusted_dir("listing");
    // kthreadd: root's, with an empty command line.
    fs::write(listing.join("2.json"), a.entry(2, &[])).unwrap();
    let out = a.switch(&listing);
    a.assert_refused(&out, &listing, "pid 2 is not a running failover-handler");
    // The listing dir is the operator's: an entry of another program's pid is cleared.
    assert!(!listing.join("2.json").exists());

    let sleep = Reaped(
        Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = sleep.0.id();
    fs::write(listing.join(format!("{pid}.json")), a.entry(pid, &["300"])).unwrap();
    let out = a.switch(&listing);
    a.assert_refused(
        &out,
        &listing,
        &format!("pid {pid} is not a running failover-handler"),
    );
}

#[test]
fn the_operators_own_listing_is_still_found() {
    let a = Attack::new();
    let out = Cmd::bare(&a.dir).sub(&["status", "--json"]).output();
    assert_eq!(out.code, Some(0), "{out:#?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["found"]["how"], "listed", "{v}");
    assert_eq!(v["found"]["pid"], a.daemon.pid(), "{v}");
    assert!(!out.stderr.contains("skipped"), "{out:#?}");
    let out = Cmd::bare(&a.dir).sub(&["check"]).output();
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "failover-handler: acting on the running daemon (pid {}, -c {})",
            a.daemon.pid(),
            a.dir.path().join("good.toml").display()
        ),
        "{out:#?}"
    );
}

#[test]
fn a_planted_writable_probe_symlink_truncates_nothing() {
    let dir = TestDir::new();
    let precious = dir.write_file("precious", "keep me\n");
    fs::create_dir(dir.state_dir()).unwrap();
    chmod(&dir.state_dir(), 0o700);
    symlink(&precious, dir.state_dir().join(".writable")).unwrap();
    Cmd::new(&dir).sub(&["pause"]).exits(0);
    assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me\n");
    assert!(dir.state_dir().join("pause.json").exists());
}

fn assert_state_dir_refused(dir: &TestDir, sub: &[&str], fix: &str) {
    let out = Cmd::new(dir).sub(sub).output_within(WAIT);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    assert!(
        out.stderr
            .starts_with("failover-handler: error: --state-dir: "),
        "{out:#?}"
    );
    assert!(out.stderr.contains(fix), "{out:#?}");
    let names: Vec<_> = fs::read_dir(dir.state_dir()).unwrap().collect();
    assert!(names.is_empty(), "written in the state dir: {names:?}");
    assert_eq!(dir.calls(), Vec::<String>::new());
}

#[test]
fn a_state_dir_of_another_user_or_open_to_others_is_refused() {
    let dir = TestDir::with_env("NAM");
    fs::create_dir(dir.state_dir()).unwrap();
    chmod(&dir.state_dir(), 0o700);
    chown(&dir.state_dir(), NOBODY);
    for sub in [&["pause"][..], &["switch", "EU"], &["run"]] {
        assert_state_dir_refused(&dir, sub, "chown 0 ");
    }
    chown(&dir.state_dir(), 0);
    chmod(&dir.state_dir(), 0o777);
    for sub in [&["pause"][..], &["resume"], &["run"]] {
        assert_state_dir_refused(&dir, sub, "chmod go-w ");
    }
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
}

/// The env file's lock and the switches' queue lock are both opened with `O_NOFOLLOW`.
#[test]
fn a_planted_env_file_lock_symlink_creates_nothing() {
    for lock in [".ext_cloud.env.lock", ".ext_cloud.env.switch.lock"] {
        let (dir, tunnel) = in_region("NAM");
        let target = dir.path().join("made-by-the-handler");
        symlink(&target, dir.path().join("app").join(lock)).unwrap();
        let out = Cmd::new(&dir)
            .tunnel(&tunnel)
            .sub(&["switch", "EU"])
            .output();
        assert!(!target.exists(), "{lock}: {out:#?}");
        assert_eq!(out.code, Some(1), "{lock}: {out:#?}");
        assert!(out.stderr.contains(lock), "{out:#?}");
        assert!(
            out.stderr
                .contains("symbolic link, which is never followed"),
            "{out:#?}"
        );
        assert_eq!(dir.read_env(), Some(env_for("NAM")));
    }
}

#[test]
fn a_second_daemon_on_the_same_state_dir_exits_naming_the_first() {
    let (dir, tunnel) = in_region("NAM");
    let first = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    first.wait_for_event("env_file_current", WAIT);
    let out = Cmd::new(&dir)
        .tunnel(&tunnel)
        .sub(&["run"])
        .env(
            "FAILOVER_HANDLER_RUNTIME_DIR",
            &dir.path().join("run2").display().to_string(),
        )
        .output_within(WAIT);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(
        out.stderr
            .starts_with("failover-handler: error: --state-dir: "),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains(&format!("pid {}", first.pid())),
        "{out:#?}"
    );
    // Commands still work beside the daemon.
    Cmd::new(&dir).sub(&["pause"]).exits(0);
    first.wait_for_event("paused", WAIT);
    first.finish();
}

#[test]
fn check_probes_through_the_running_daemons_settings() {
    let (dir, tunnel) = in_region("NAM");
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    d.wait_for_event("env_file_current", WAIT);
    let out = Cmd::bare(&dir).sub(&["check"]).output();
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "failover-handler: acting on the running daemon (pid {}, --state-dir {})",
            d.pid(),
            dir.state_dir().display()
        ),
        "{out:#?}"
    );
    d.finish();
}

#[test]
fn root_lists_its_daemon_in_run_whatever_xdg_runtime_dir_says() {
    let (dir, tunnel) = in_region("NAM");
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .env_remove("FAILOVER_HANDLER_RUNTIME_DIR")
        .spawn_daemon();
    d.wait_for_event("env_file_current", WAIT);
    let listed = Path::new("/run/failover-handler").join(format!("{}.json", d.pid()));
    assert!(listed.exists(), "{}", d.dump());
    assert!(!runtime_dir(&dir).exists(), "{}", d.dump());
    d.finish();
    assert!(!listed.exists());
}
