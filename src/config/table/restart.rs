//! `[restart]`, `[log]` and `[metrics]`: how the programs are restarted, and what is told.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::cli::LogFormat;
use crate::config::redact;
use crate::config::setting::{
    Doc, Example, Setting, any, duration, no_text, positive, show_duration, show_list, show_text,
};
use crate::config::settings::{DEFAULT_PROGRAMS, Via};
use crate::config::values::parse_listen_addr;
use crate::kernel::region::is_safe_token;

pub static VIA: Setting<Via> = Setting {
    doc: Doc {
        key: Some("restart.via"),
        flag: Some("--restart-via"),
        value: Some("HOW"),
        default: "auto",
        help: "`auto`, `xmlrpc` or `supervisorctl`: see [Restart paths](#restart-paths)",
        ..Doc::NONE
    },
    flag: |o| o.restart_via.as_deref().map(Via::from_text),
    text: no_text,
    file: |f| f.restart.as_ref()?.via.as_deref().map(Via::from_text),
    default: || Via::Auto,
    check: any,
    show: |c| show_text(c.restart.via.as_str()),
};

pub static SUPERVISORCTL: Setting<String> = Setting {
    doc: Doc {
        key: Some("restart.supervisorctl"),
        flag: Some("--supervisorctl"),
        value: Some("CMD"),
        default: "supervisorctl",
        help: "the supervisorctl executable",
        ..Doc::NONE
    },
    flag: |o| o.supervisorctl.clone().map(Ok),
    text: no_text,
    file: |f| f.restart.as_ref()?.supervisorctl.clone().map(Ok),
    default: || "supervisorctl".to_string(),
    check: |s| {
        if s.trim().is_empty() {
            return Err("must name an executable".to_string());
        }
        Ok(())
    },
    show: |c| show_text(&c.restart.supervisorctl),
};

pub static ARGS: Setting<Vec<String>> = Setting {
    doc: Doc {
        key: Some("restart.args"),
        flag: Some("--supervisorctl-arg"),
        value: Some("ARG"),
        default: "none",
        help: "one argument given to supervisorctl before each command; repeat the flag for more: `--supervisorctl-arg=-c --supervisorctl-arg=/etc/supervisor/supervisord.conf`",
        example: Example::Value("[\"-c\", \"/etc/supervisor/supervisord.conf\"]"),
        ..Doc::NONE
    },
    flag: |o| o.supervisorctl_args.clone().map(Ok),
    text: no_text,
    file: |f| f.restart.as_ref()?.args.clone().map(Ok),
    default: Vec::new,
    check: |args| match args.iter().find(|a| a.is_empty() || a.contains('\0')) {
        Some(bad) => Err(format!(
            "'{}' is not a usable argument (empty, or holds a NUL byte)",
            bad.replace('\0', "\\0")
        )),
        None => Ok(()),
    },
    show: |c| show_list(redact::args(&c.restart.args)),
};

pub static PROGRAMS: Setting<Vec<String>> = Setting {
    doc: Doc {
        key: Some("restart.programs"),
        flag: Some("--programs"),
        value: Some("A,B,C"),
        default: "app:application,app:cloud-client,app:stunnel",
        help: "stopped in this order, started in reverse",
        ..Doc::NONE
    },
    flag: |o| o.programs.clone().map(Ok),
    text: no_text,
    file: |f| f.restart.as_ref()?.programs.clone().map(Ok),
    default: || DEFAULT_PROGRAMS.iter().map(|p| p.to_string()).collect(),
    check: |programs| {
        if programs.is_empty() {
            return Err("the list is empty".to_string());
        }
        match programs
            .iter()
            .find(|p| !is_safe_token(p, 200) || p.starts_with('-'))
        {
            Some(p) => Err(format!(
                "'{p}' is not a supervisord program name ([A-Za-z0-9._:-], not starting with '-')"
            )),
            None => Ok(()),
        }
    },
    show: |c| show_list(c.restart.programs.clone()),
};

pub static RESTART_TIMEOUT: Setting<Duration> = Setting {
    doc: Doc {
        key: Some("restart.timeout"),
        default: "1m",
        help: "the deadline of each stop or start call",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| duration(f.restart.as_ref()?.timeout.as_ref()),
    default: || Duration::from_secs(60),
    check: positive,
    show: |c| show_duration(c.restart.timeout),
};

pub static NO_RESTART: Setting<bool> = Setting {
    doc: Doc {
        key: Some("restart.no_restart"),
        flag: Some("--no-restart"),
        default: "off",
        help: "write the env file but restart nothing",
        ..Doc::NONE
    },
    flag: |o| o.no_restart.then_some(Ok(true)),
    text: no_text,
    file: |f| f.restart.as_ref()?.no_restart.map(Ok),
    default: || false,
    check: any,
    show: |c| Some(toml::Value::Boolean(!c.restart.enabled)),
};

pub static LOG_FORMAT: Setting<LogFormat> = Setting {
    doc: Doc {
        key: Some("log.format"),
        flag: Some("--log-format"),
        value: Some("FORMAT"),
        default: "json",
        help: "log lines on stdout: `json` (one object per line) or `text`",
        ..Doc::NONE
    },
    flag: |o| o.log_format.map(Ok),
    text: no_text,
    file: |f| f.log.as_ref()?.format.map(Ok),
    default: || LogFormat::Json,
    check: any,
    show: |c| {
        show_text(match c.log_format {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        })
    },
};

pub static METRICS_ADDR: Setting<Option<SocketAddr>> = Setting {
    doc: Doc {
        key: Some("metrics.addr"),
        flag: Some("--metrics-addr"),
        value: Some("ADDR"),
        default: "off",
        help: "serve `/metrics`, `/status`, `/history` and `/`; a bare port means loopback",
        example: Example::Value("\"127.0.0.1:9464\""),
        ..Doc::NONE
    },
    flag: |o| {
        o.metrics_addr
            .as_deref()
            .map(|a| parse_listen_addr(a).map(Some))
    },
    text: no_text,
    file: |f| {
        let addr = f.metrics.as_ref()?.addr.as_deref()?;
        Some(parse_listen_addr(addr).map(Some))
    },
    default: || None,
    check: any,
    show: |c| c.metrics_addr.map(|a| a.to_string()).and_then(show_text),
};
