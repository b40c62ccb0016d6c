//! Where supervisord listens and with which credentials, found as supervisorctl finds them:
//! `-s`, `-u`, `-p` and `-c` in `restart.args`, else supervisorctl's config file from the
//! system places it searches (never the working directory: a `supervisord.conf` there may be
//! anybody's), and in it `[supervisorctl]` `serverurl`, `username`, `password`
//! (without a `serverurl`: the socket of `[unix_http_server]`, else the port of
//! `[inet_http_server]`, else supervisorctl's default `http://localhost:9001`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::{SECRET_VARS, Secret};

/// supervisorctl's server when nothing names one.
pub const DEFAULT_SERVERURL: &str = "http://localhost:9001";

/// Config files larger than this are not supervisor configs.
const MAX_CONF_BYTES: u64 = 1 << 20;

/// Where supervisord's XML-RPC interface listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerUrl {
    Unix(PathBuf),
    Http { host: String, port: u16 },
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerUrl::Unix(path) => write!(f, "unix://{}", path.display()),
            ServerUrl::Http { host, port } => write!(f, "http://{host}:{port}"),
        }
    }
}

/// The server and credentials supervisorctl would use, and where they came from.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: ServerUrl,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The supervisorctl config file read, if any.
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ConfError {
    #[error("cannot read supervisorctl's config file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("'{0}' is not a unix:// or http:// server URL")]
    BadUrl(String),
    #[error("no supervisorctl config file in {0}")]
    NotFound(String),
}

/// The options of supervisorctl found in `restart.args` (the others are ignored).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CtlArgs {
    pub config: Option<String>,
    pub serverurl: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Reads `-c FILE`, `-s URL`, `-u USER`, `-p PASS` (and their long forms, `-cFILE`,
/// `--configuration=FILE`) as supervisorctl's getopt does.
pub fn parse_args(args: &[String]) -> CtlArgs {
    let mut out = CtlArgs::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        let (slot, inline) = match arg {
            "-c" | "--configuration" => (&mut out.config, None),
            "-s" | "--serverurl" => (&mut out.serverurl, None),
            "-u" | "--username" => (&mut out.username, None),
            "-p" | "--password" => (&mut out.password, None),
            "--" => break,
            _ => {
                let long = [
                    ("--configuration=", 0),
                    ("--serverurl=", 1),
                    ("--username=", 2),
                    ("--password=", 3),
                ]
                .into_iter()
                .find_map(|(p, n)| arg.strip_prefix(p).map(|v| (n, v)));
                let short = ["-c", "-s", "-u", "-p"]
                    .into_iter()
                    .enumerate()
                    .find_map(|(n, p)| arg.strip_prefix(p).map(|v| (n, v)));
                let found = if arg.starts_with("--") { long } else { short };
                match found {
                    Some((n, v)) => {
                        let slot = match n {
                            0 => &mut out.config,
                            1 => &mut out.serverurl,
                            2 => &mut out.username,
                            _ => &mut out.password,
                        };
                        (slot, Some(v.to_string()))
                    }
                    // The first word that is not an option is a supervisorctl command.
                    None if !arg.starts_with('-') => break,
                    None => continue,
                }
            }
        };
        match inline {
            Some(v) => *slot = Some(v),
            None => {
                if let Some(v) = args.get(i) {
                    *slot = Some(v.clone());
                    i += 1;
                }
            }
        }
    }
    out
}

/// The places supervisorctl searches for its config file, in its order, for the executable
/// at `exe`, less the two in the working directory (`supervisord.conf`, `etc/supervisord.conf`):
/// whoever can write where a command is run must not choose the server that receives the
/// credentials. A config elsewhere is named with `-c` in `restart.args`.
pub fn search_paths(exe: &Path) -> Vec<PathBuf> {
    let here = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    vec![
        here.join("etc").join("supervisord.conf"),
        here.join("supervisord.conf"),
        PathBuf::from("/etc/supervisord.conf"),
        PathBuf::from("/etc/supervisor/supervisord.conf"),
    ]
}

/// The environment `%(ENV_X)s` expands from: the handler's own, less its secrets
/// ([`SECRET_VARS`]), which expand to nothing, as an unset variable does.
pub fn expansion_env(name: &str) -> Option<String> {
    without_secrets(name, &|n| std::env::var(n).ok())
}

fn without_secrets(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if SECRET_VARS.contains(&name) {
        return None;
    }
    env(name)
}

/// An INI file as Python's RawConfigParser reads supervisor's: `[section]`, `key = value` or
/// `key: value`, keys in any case, `;` and `#` comments (inline after whitespace),
/// indented continuation lines.
pub fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for raw in text.lines() {
        let line = strip_inline_comment(raw);
        if line.trim().is_empty() || raw.trim_start().starts_with([';', '#']) {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            if let (Some(s), Some(k)) = (&section, &last_key)
                && let Some(v) = sections.get_mut(s).and_then(|m| m.get_mut(k))
            {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let name = name.trim().to_string();
            sections.entry(name.clone()).or_default();
            section = Some(name);
            last_key = None;
            continue;
        }
        let Some(s) = &section else { continue };
        let Some(at) = trimmed.find(['=', ':']) else {
            continue;
        };
        let key = trimmed[..at].trim().to_lowercase();
        let value = trimmed[at + 1..].trim().to_string();
        sections
            .entry(s.clone())
            .or_default()
            .insert(key.clone(), value);
        last_key = Some(key);
    }
    sections
}

fn strip_inline_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if (*b == b';' || *b == b'#') && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

/// Replaces `%(here)s` (the config file's directory) and `%(ENV_X)s` (the variable X as `env`
/// gives it), as supervisor's expansions do; `%%` is a `%`.
fn expand(value: &str, here: &Path, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("%%") {
            out.push('%');
            rest = after;
        } else if let Some(end) = tail.find(")s").filter(|_| tail.starts_with("%(")) {
            let name = &tail[2..end];
            if name == "here" {
                out.push_str(&here.display().to_string());
            } else if let Some(var) = name.strip_prefix("ENV_") {
                out.push_str(&env(var).unwrap_or_default());
            }
            rest = &tail[end + 2..];
        } else {
            out.push('%');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A server URL as supervisorctl takes it: `unix:///path` (relative to `cwd` if relative),
/// `http://host:port` (a path after it is ignored: the interface is always at `/RPC2`), or a
/// bare `host:port` or port as `[inet_http_server] port` holds.
pub fn parse_serverurl(text: &str, cwd: &Path) -> Result<ServerUrl, ConfError> {
    let text = text.trim();
    let bad = || ConfError::BadUrl(text.to_string());
    if let Some(path) = text.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad());
        }
        return Ok(ServerUrl::Unix(absolute(Path::new(path), cwd)));
    }
    let hostport = match text.strip_prefix("http://") {
        Some(rest) => rest.split('/').next().unwrap_or(""),
        None if text.contains("://") => return Err(bad()),
        None => text,
    };
    // user:password@ before the host is not supervisorctl's way; refused rather than guessed.
    if hostport.contains('@') || hostport.is_empty() {
        return Err(bad());
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None if hostport.bytes().all(|b| b.is_ascii_digit()) => {
            ("", hostport.parse().map_err(|_| bad())?)
        }
        None => (hostport, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = match host {
        "" | "*" => "localhost",
        h => h,
    };
    Ok(ServerUrl::Http {
        host: host.to_string(),
        port,
    })
}

fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// Reads a config file, refusing what is too big to be one.
fn read_conf(path: &Path) -> Result<String, ConfError> {
    let unreadable = |reason: String| ConfError::Unreadable {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if meta.len() > MAX_CONF_BYTES {
        return Err(unreadable("larger than 1 MiB".to_string()));
    }
    std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))
}

/// The server and credentials for supervisorctl at `exe` with `args`, run from `cwd`.
pub fn resolve(
    exe: &Path,
    args: &[String],
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Target, ConfError> {
    let ctl = parse_args(args);
    let config = match &ctl.config {
        Some(c) => Some(absolute(Path::new(c), cwd)),
        None => search_paths(exe).into_iter().find(|p| p.is_file()),
    };
    let mut file = HashMap::new();
    if let Some(path) = &config {
        let text = read_conf(path)?;
        file = parse_ini(&text);
    } else if ctl.serverurl.is_none() {
        let places: Vec<String> = search_paths(exe)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(ConfError::NotFound(places.join(", ")));
    }
    let here = config
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(cwd)
        .to_path_buf();
    let get = |section: &str, key: &str| {
        file.get(section)
            .and_then(|s| s.get(key))
            .map(|v| expand(v, &here, env))
            .filter(|v| !v.is_empty())
    };
    let url_text = ctl
        .serverurl
        .clone()
        .or_else(|| get("supervisorctl", "serverurl"))
        .or_else(|| get("unix_http_server", "file").map(|f| format!("unix://{f}")))
        .or_else(|| get("inet_http_server", "port"))
        .unwrap_or_else(|| DEFAULT_SERVERURL.to_string());
    let url = parse_serverurl(&url_text, cwd)?;
    Ok(Target {
        url,
        username: ctl
            .username
            .clone()
            .or_else(|| get("supervisorctl", "username")),
        password: ctl
            .password
            .clone()
            .or_else(|| get("supervisorctl", "password"))
            .map(Secret::new),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn supervisorctl_options_in_every_spelling() {
        let a = parse_args(&strings(&["-c", "/x.conf", "-s", "unix:///s", "-u", "me"]));
        assert_eq!(a.config.as_deref(), Some("/x.conf"));
        assert_eq!(a.serverurl.as_deref(), Some("unix:///s"));
        assert_eq!(a.username.as_deref(), Some("me"));
        let a = parse_args(&strings(&[
            "--configuration=/y.conf",
            "-pse cret",
            "--serverurl",
            "http://h:1",
        ]));
        assert_eq!(a.config.as_deref(), Some("/y.conf"));
        assert_eq!(a.password.as_deref(), Some("se cret"));
        assert_eq!(a.serverurl.as_deref(), Some("http://h:1"));
        let a = parse_args(&strings(&["-i", "status", "-c", "/z"]));
        assert_eq!(a.config, None, "after the command: not an option");
    }

    #[test]
    fn ini_as_supervisor_reads_it() {
        let ini = parse_ini(
            "; comment\n[unix_http_server]\nfile=/run/s.sock   ; the socket\nchmod=0700\n\
             [supervisorctl]\nServerURL : unix:///a#b.sock\n  continued\nusername=u # who\n",
        );
        assert_eq!(ini["unix_http_server"]["file"], "/run/s.sock");
        assert_eq!(
            ini["supervisorctl"]["serverurl"],
            "unix:///a#b.sock\ncontinued"
        );
        assert_eq!(ini["supervisorctl"]["username"], "u");
    }

    #[test]
    fn server_urls() {
        let cwd = Path::new("/w");
        let ok = |t: &str| parse_serverurl(t, cwd).unwrap();
        assert_eq!(
            ok("unix:///run/s.sock"),
            ServerUrl::Unix("/run/s.sock".into())
        );
        assert_eq!(ok("unix://rel.sock"), ServerUrl::Unix("/w/rel.sock".into()));
        let http = |h: &str, p| ServerUrl::Http {
            host: h.into(),
            port: p,
        };
        assert_eq!(ok("http://127.0.0.1:9001"), http("127.0.0.1", 9001));
        assert_eq!(ok("http://h:9001/RPC2"), http("h", 9001));
        assert_eq!(ok("http://h"), http("h", 80));
        assert_eq!(ok("9001"), http("localhost", 9001));
        assert_eq!(ok("*:9001"), http("localhost", 9001));
        assert_eq!(ok(":9001"), http("localhost", 9001));
        for bad in ["ftp://x", "unix://", "http://u:p@h:1", "http://h:x", ""] {
            assert!(parse_serverurl(bad, cwd).is_err(), "{bad}");
        }
    }

    #[test]
    fn expansions() {
        let env = |k: &str| (k == "SOCK").then(|| "s.sock".to_string());
        assert_eq!(
            expand("%(here)s/%(ENV_SOCK)s 100%%", Path::new("/etc/x"), &env),
            "/etc/x/s.sock 100%"
        );
    }

    #[test]
    fn resolves_like_supervisorctl() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Found beside the executable: <bin>/../supervisord.conf.
        let conf = d.join("supervisord.conf");
        let no_env = |_: &str| None;
        let exe = d.join("bin").join("supervisorctl");
        let exe = exe.as_path();

        std::fs::write(
            &conf,
            "[unix_http_server]\nfile=%(here)s/s.sock\nusername=srv\npassword=srvpw\n\
             [supervisorctl]\nusername=u\npassword=pw\n",
        )
        .unwrap();
        let t = resolve(exe, &[], d, &no_env).unwrap();
        assert_eq!(t.url, ServerUrl::Unix(d.join("s.sock")));
        assert_eq!(t.username.as_deref(), Some("u"));
        assert_eq!(t.password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(t.config.as_deref(), Some(conf.as_path()));

        let args = strings(&["-s", "http://127.0.0.1:9", "-p", "other"]);
        let t = resolve(exe, &args, d, &no_env).unwrap();
        assert_eq!(t.url.to_string(), "http://127.0.0.1:9");
        assert_eq!(t.password.as_ref().map(Secret::expose), Some("other"));

        std::fs::write(&conf, "[inet_http_server]\nport=127.0.0.1:9002\n").unwrap();
        let t = resolve(exe, &[], d, &no_env).unwrap();
        assert_eq!(t.url.to_string(), "http://127.0.0.1:9002");

        std::fs::write(&conf, "[supervisorctl]\n").unwrap();
        let t = resolve(exe, &[], d, &no_env).unwrap();
        assert_eq!(t.url.to_string(), DEFAULT_SERVERURL);

        let other = d.join("other.conf");
        std::fs::write(&other, "[supervisorctl]\nserverurl=unix:///o.sock\n").unwrap();
        let t = resolve(exe, &strings(&["-c", "other.conf"]), d, &no_env).unwrap();
        assert_eq!(t.url.to_string(), "unix:///o.sock");

        let missing = resolve(exe, &strings(&["-c", "nope.conf"]), d, &no_env);
        assert!(matches!(missing, Err(ConfError::Unreadable { .. })));
    }

    #[test]
    fn a_config_in_the_working_directory_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        for planted in [
            cwd.join("supervisord.conf"),
            cwd.join("etc/supervisord.conf"),
        ] {
            std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
            std::fs::write(&planted, "[supervisorctl]\nserverurl=http://127.0.0.1:1\n").unwrap();
        }
        let exe = cwd.join("nowhere/bin/supervisorctl");
        let no_env = |_: &str| None;
        match resolve(&exe, &[], cwd, &no_env) {
            Ok(t) => assert!(!t.config.unwrap().starts_with(cwd)),
            Err(e) => assert!(matches!(e, ConfError::NotFound(_)), "{e}"),
        }
    }

    #[test]
    fn the_handlers_secrets_never_expand() {
        let all = |_: &str| Some("s3cr3t".to_string());
        let env = |n: &str| without_secrets(n, &all);
        for var in SECRET_VARS {
            let got = expand(&format!("x%(ENV_{var})sy"), Path::new("/"), &env);
            assert_eq!(got, "xy", "{var}");
        }
        assert_eq!(expand("%(ENV_SOCK)s", Path::new("/"), &env), "s3cr3t");
    }

    #[test]
    fn the_search_follows_supervisors_order_without_the_working_directory() {
        let paths = search_paths(Path::new("/opt/sv/bin/supervisorctl"));
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/opt/sv/etc/supervisord.conf",
                "/opt/sv/supervisord.conf",
                "/etc/supervisord.conf",
                "/etc/supervisor/supervisord.conf",
            ]
        );
    }
}
