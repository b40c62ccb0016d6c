//! The status page for people (`/`): one self-contained HTML page, rendered on the server from
//! the published snapshot and history, with no external asset (inline CSS, inline SVG
//! sparklines, a few lines of inline script that refresh it; without script a meta refresh).

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::duration_text;
use crate::report::journal::Record;
use crate::report::view::{LATENCY_POINTS, RegionView, Snapshot};

/// Seconds between refreshes of the page.
const REFRESH_SECS: u64 = 3;
/// Decisions shown in the timeline.
const TIMELINE: usize = 40;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn dur(ms: u64) -> String {
    let d = if ms >= 10_000 {
        Duration::from_secs(ms / 1000)
    } else {
        Duration::from_millis(ms / 100 * 100)
    };
    if d.is_zero() {
        "0s".to_string()
    } else {
        duration_text(d)
    }
}

/// `2025-01-02T03:04:05.678Z` as `2025-01-02 03:04:05 UTC`.
fn when(ts: &str) -> String {
    let t = ts.replacen('T', " ", 1);
    let t = t.split('.').next().unwrap_or(&t).trim_end_matches('Z');
    format!("{t} UTC")
}

/// An inline SVG sparkline of the latencies (the newest on the right), with failed checks as
/// red ticks.
pub fn sparkline(points: &[Option<f64>]) -> String {
    const W: f64 = 240.0;
    const H: f64 = 44.0;
    let max = points.iter().flatten().fold(1.0_f64, |m, v| m.max(*v));
    let step = W / (LATENCY_POINTS.max(2) - 1) as f64;
    // The newest point sits at the right edge; a short history starts part-way.
    let offset = LATENCY_POINTS.saturating_sub(points.len());
    let x = |i: usize| (i + offset) as f64 * step;
    let y = |v: f64| H - 4.0 - (v / max) * (H - 10.0);
    let mut svg = format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"latency sparkline\">"
    );
    let ok: Vec<f64> = points.iter().flatten().copied().collect();
    let _ = write!(
        svg,
        "<title>last {} checks: {}</title>",
        points.len(),
        if ok.is_empty() {
            "no success".to_string()
        } else {
            format!(
                "min {:.1} ms, max {:.1} ms",
                ok.iter().fold(f64::MAX, |m, v| m.min(*v)),
                max
            )
        }
    );
    let _ = write!(
        svg,
        "<line x1=\"0\" y1=\"{0}\" x2=\"{W}\" y2=\"{0}\" class=\"base\"/>",
        H - 3.5
    );
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, svg: &mut String| {
        match run.len() {
            0 => {}
            1 => {
                let (px, py) = run[0].split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    svg,
                    "<circle cx=\"{px}\" cy=\"{py}\" r=\"1.8\" class=\"ok\"/>"
                );
            }
            _ => {
                let _ = write!(
                    svg,
                    "<polyline points=\"{}\" class=\"line\"/>",
                    run.join(" ")
                );
            }
        }
        run.clear();
    };
    for (i, p) in points.iter().enumerate() {
        match p {
            Some(v) => run.push(format!("{:.1},{:.1}", x(i), y(*v))),
            None => {
                flush(&mut run, &mut svg);
                let _ = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"9\" class=\"fail\"/>",
                    (x(i) - 1.5).max(0.0),
                    H - 10.0
                );
            }
        }
    }
    flush(&mut run, &mut svg);
    svg.push_str("</svg>");
    svg
}

fn region_card(r: &RegionView) -> String {
    let (class, word) = match r.healthy {
        Some(true) => ("ok", "healthy"),
        Some(false) => ("bad", "failing"),
        None => ("unknown", "not checked"),
    };
    let latency = r
        .latency_ms
        .filter(|_| r.healthy == Some(true))
        .map(|l| format!("{l:.1} ms"))
        .unwrap_or_else(|| "–".to_string());
    let mut card = format!(
        "<div class=\"card {class}{}\" data-region=\"{}\"><div class=\"row\"><span class=\"name\">{}</span>{}<span class=\"badge {class}\">{word}</span></div><div class=\"cloud\">{}</div><div class=\"row\"><span class=\"lat\">{latency}</span>{}</div>",
        if r.active { " active" } else { "" },
        esc(&r.name),
        esc(&r.name),
        if r.active {
            "<span class=\"tag\">ACTIVE</span>"
        } else {
            ""
        },
        esc(&r.cloud),
        sparkline(&r.latencies),
    );
    if let Some(e) = &r.error {
        let _ = write!(card, "<div class=\"err\">{}</div>", esc(e));
    }
    if let Some(at) = &r.checked_at {
        let _ = write!(
            card,
            "<div class=\"small\">checked {}</div>",
            esc(&when(at))
        );
    }
    card.push_str("</div>");
    card
}

fn hero(s: &Snapshot) -> String {
    let (class, state) = match &s.outage {
        None => ("ok", "Healthy".to_string()),
        Some(o) if o.held_back => (
            "bad",
            format!(
                "Outage for {}: failover held back (paused)",
                dur(o.failing_for_ms)
            ),
        ),
        Some(o) => (
            "warn",
            format!(
                "Failing for {} of {}{}",
                dur(o.failing_for_ms),
                dur(o.threshold_ms),
                o.error_kind
                    .as_deref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default()
            ),
        ),
    };
    let bar = s
        .outage
        .as_ref()
        .map(|o| {
            let pct = o
                .failing_for_ms
                .saturating_mul(100)
                .checked_div(o.threshold_ms)
                .map_or(100, |p| p.min(100));
            format!(
                "<div class=\"timer\" title=\"outage timer\"><div style=\"width:{pct}%\"></div></div><div class=\"small\">outage timer since {}</div>",
                esc(&when(&o.since))
            )
        })
        .unwrap_or_default();
    format!(
        "<section class=\"hero {class}\"><div class=\"label\">Active region</div><div class=\"big\" id=\"active-region\">{}</div><div class=\"cloud\">{} · since {}</div><div class=\"state\" id=\"state\">{}</div>{bar}</section>",
        esc(&s.active.region),
        esc(&s.active.cloud),
        esc(&when(&s.active.since)),
        esc(&state),
    )
}

fn timeline(history: &[Record]) -> String {
    let switches: Vec<&Record> = history
        .iter()
        .rev()
        .filter(|r| r.event == "switch" || r.event == "failover_held")
        .take(TIMELINE)
        .collect();
    let mut html = String::from("<section><h2>Switches</h2>");
    if switches.is_empty() {
        html.push_str("<p class=\"small\">No switch yet.</p>");
    } else {
        html.push_str("<ol class=\"timeline\">");
        for r in switches {
            // Records of earlier versions name the regions `from` and `to`.
            let from = r.str_field("region").or(r.str_field("from")).unwrap_or("?");
            let to = r
                .str_field("to_region")
                .or(r.str_field("to"))
                .unwrap_or("?");
            let reason = r.str_field("reason").unwrap_or("");
            let held = r.event == "failover_held";
            let after = r
                .fields
                .get("failed_for_ms")
                .and_then(|v| v.as_u64())
                .map(|m| format!(" after {} of failures", dur(m)))
                .unwrap_or_default();
            let _ = write!(
                html,
                "<li class=\"switch{}\"><span class=\"when\">{}</span> <b>{}</b> → <b>{}</b> <span class=\"reason\">{}{}</span>{}</li>",
                if held { " held" } else { "" },
                esc(&when(&r.timestamp)),
                esc(from),
                esc(to),
                esc(reason),
                esc(&after),
                if held { " <i>held back</i>" } else { "" }
            );
        }
        html.push_str("</ol>");
    }
    html.push_str("</section>");
    html
}

fn decisions(history: &[Record]) -> String {
    let mut html = String::from(
        "<section><h2>Recent decisions</h2><table class=\"log\"><thead><tr><th>time</th><th>event</th><th>what</th></tr></thead><tbody>",
    );
    for r in history.iter().rev().take(TIMELINE) {
        let _ = write!(
            html,
            "<tr class=\"lvl-{}\"><td class=\"when\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.level.to_lowercase()),
            esc(&when(&r.timestamp)),
            esc(&r.event),
            esc(&r.message)
        );
    }
    html.push_str("</tbody></table></section>");
    html
}

const STYLE: &str = "
*{box-sizing:border-box}body{margin:0;font:15px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;background:#f4f6f8;color:#1d2329}
main{max-width:1120px;margin:0 auto;padding:18px 22px}header{display:flex;justify-content:space-between;align-items:baseline;gap:12px;flex-wrap:wrap}
h1{font-size:20px;margin:0}h2{font-size:15px;text-transform:uppercase;letter-spacing:.06em;color:#56606b;margin:22px 0 8px}
.small,.meta{font-size:12px;color:#5b6570}.hero{border-radius:10px;padding:16px 20px;margin-top:12px;color:#fff}
.hero.ok{background:#1f7a4d}.hero.warn{background:#8a5a00}.hero.bad{background:#b42318}.hero .small{color:#fff}
.label{font-size:12px;text-transform:uppercase;letter-spacing:.08em}.big{font-size:40px;font-weight:700;line-height:1.1}
.state{font-size:18px;margin-top:6px;font-weight:600}.timer{height:8px;background:#ffffff59;border-radius:4px;margin-top:8px;overflow:hidden}
.timer div{height:100%;background:#fff}.pause{background:#3b4a5a;color:#fff;border-radius:10px;padding:10px 16px;margin-top:10px;font-weight:600}.fault{background:#a33}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.card{background:#fff;border-radius:10px;padding:12px 14px;border:2px solid #e3e7eb}.card.active{border-color:#2563eb}
.row{display:flex;align-items:center;gap:8px;justify-content:space-between}.name{font-size:20px;font-weight:700}
.tag{background:#2563eb;color:#fff;font-size:11px;border-radius:4px;padding:1px 6px;margin-right:auto}
.badge{font-size:12px;border-radius:10px;padding:2px 9px;font-weight:600}.badge.ok{background:#d1fadf;color:#05603a}
.badge.bad{background:#fee4e2;color:#b42318}.badge.unknown{background:#eef1f4;color:#56606b}
.cloud{font-size:13px;color:#56606b}.hero .cloud{color:#fff}.lat{font-variant-numeric:tabular-nums;font-weight:600;min-width:70px}
.spark .line{fill:none;stroke:#2563eb;stroke-width:1.6}.spark .ok{fill:#2563eb}.spark .fail{fill:#d92d20}.spark .base{stroke:#e3e7eb}
.err{font-size:12px;color:#b42318;margin-top:4px;word-break:break-word}
.timeline{list-style:none;padding:0;margin:0}.timeline li{background:#fff;border-left:4px solid #b42318;padding:8px 12px;margin-bottom:6px;border-radius:4px}
.timeline li.held{border-left-color:#3b4a5a}.when{color:#5b6570;font-size:12px;font-variant-numeric:tabular-nums}.reason{color:#56606b}
table.log{width:100%;border-collapse:collapse;background:#fff;border-radius:8px;overflow:hidden;font-size:13px}
.log th,.log td{text-align:left;padding:5px 10px;border-bottom:1px solid #eef1f4;vertical-align:top}.log td:first-child{white-space:nowrap}
.lvl-warn td:nth-child(2){color:#8a5a00;font-weight:600}.lvl-error td:nth-child(2){color:#b42318;font-weight:600}
.stale-banner{background:#b42318;color:#fff;font-weight:600;padding:10px 22px;text-align:center}.stale-banner[hidden]{display:none}
body.stale .hero{background:#4b5563}
";

/// The page's script. It polls `/status` every interval; when the snapshot changed it fetches
/// the page again and swaps its body. When `/status` has not answered for one and a half
/// intervals (or answers with a view past its `fresh_until`, by the server's own clock), it
/// shows a red banner with the age of the last data and turns the hero grey, so that a page
/// of a stopped or hung daemon never stays green. `P` is the interval in ms, `U` the
/// snapshot's `updated_at`.
const SCRIPT: &str = r#"(()=>{const P=REFRESH_MS,S=P*3/2,b=document.getElementById('stale');
let ok=Date.now(),age0=0,seen=UPDATED,at=UPDATED,frozen=false,busy=false;
const fmt=ms=>{const s=Math.max(0,Math.round(ms/1000));return s<120?s+' s':Math.round(s/60)+' min'};
const utc=t=>t.replace('T',' ').replace(/\.\d+Z$/,'').replace(/Z$/,'')+' UTC';
async function poll(){if(busy)return;busy=true;const c=new AbortController(),t=setTimeout(()=>c.abort(),P);
try{const r=await fetch('/status',{cache:'no-store',signal:c.signal});if(!r.ok)throw new Error(r.status);
const s=await r.json(),now=Date.parse(r.headers.get('date'))||Date.now();
ok=Date.now();at=s.updated_at;age0=Math.max(0,now-Date.parse(at));frozen=now>Date.parse(s.fresh_until)+1000;
if(at!==seen){seen=at;const p=await fetch(location.pathname,{cache:'no-store',signal:c.signal});
if(p.ok){const d=new DOMParser().parseFromString(await p.text(),'text/html'),m=d.getElementById('main');
if(m){document.getElementById('main').replaceWith(m);document.title=d.title;}}}}
catch(e){}finally{clearTimeout(t);busy=false;check();}}
function check(){const silent=Date.now()-ok,age=silent+age0;let msg='';
if(silent>S)msg='No answer from the daemon for '+fmt(silent)+'. The last data is from '+utc(at)+' ('+fmt(age)+' old): what this page shows may no longer be true.';
else if(frozen)msg='The daemon answers but its view has not been updated since '+utc(at)+' ('+fmt(age)+' old): it may be stuck.';
document.body.classList.toggle('stale',msg!=='');b.hidden=msg==='';if(msg)b.textContent=msg;}
setInterval(poll,P);setInterval(check,500);})();"#;

/// `text` as a JavaScript string literal that is also safe inside `<script>`.
fn js_string(text: &str) -> String {
    serde_json::Value::String(text.to_string())
        .to_string()
        .replace('<', "\\u003c")
}

/// The whole page.
pub fn render(s: &Snapshot, history: &[Record]) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{} · {}</title><noscript><meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"></noscript><style>{STYLE}</style></head><body><div class=\"stale-banner\" id=\"stale\" role=\"alert\" hidden></div><main id=\"main\">",
        esc(&s.active.region),
        esc(&s.service)
    );
    let _ = write!(
        html,
        "<header><h1>failover-handler</h1><span class=\"meta\">{} · v{} · pid {} · updated {}{}</span></header>",
        esc(&s.service),
        esc(&s.version),
        s.pid,
        esc(&when(&s.updated_at)),
        if s.dry_run { " · DRY RUN" } else { "" }
    );
    html.push_str(&hero(s));
    html.push_str(&crate::report::local::banners(s));
    if let Some(p) = &s.pause {
        let until = match (&p.until, p.remaining_ms) {
            (Some(u), Some(left)) => format!("until {} ({} left)", when(u), dur(left)),
            _ => "until `failover-handler resume`".to_string(),
        };
        let _ = write!(
            html,
            "<div class=\"pause\" id=\"pause\">Automatic switching is PAUSED {}: probing continues, no automatic failover.</div>",
            esc(&until)
        );
    }
    if let Some(pin) = &s.pin {
        let _ = write!(
            html,
            "<p class=\"small\">Pinned to {} by a manual switch.</p>",
            esc(pin)
        );
    }
    html.push_str("<section><h2>Regions</h2><div class=\"grid\">");
    for r in &s.regions {
        html.push_str(&region_card(r));
    }
    html.push_str("</div></section>");
    html.push_str(&timeline(history));
    html.push_str(&decisions(history));
    let _ = write!(
        html,
        "</main><script>{}</script></body></html>",
        SCRIPT
            .replace("REFRESH_MS", &(REFRESH_SECS * 1000).to_string())
            .replace("UPDATED", &js_string(&s.updated_at))
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::journal::Level;
    use crate::report::view::{Meta, View};
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn sparkline_draws_lines_and_failures() {
        let svg = sparkline(&[Some(10.0), Some(20.0), None, Some(5.0)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("class=\"fail\"").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
    }

    #[test]
    fn the_page_is_self_contained_and_shows_regions_and_switches() {
        let regions = crate::kernel::region::parse_failover_list(
            crate::kernel::region::DEFAULT_FAILOVER_LIST,
        )
        .unwrap();
        let w = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut v = View::new(&regions, Duration::from_secs(240), w);
        v.checked(
            0,
            Duration::from_millis(12),
            Some("status: HTTP 503 <x>".into()),
            w,
        );
        v.switched(0, 1, "outage", Some(Duration::from_secs(241)), w);
        let meta = Meta {
            service: "svc".into(),
            pid: 1,
            started_at: w,
            dry_run: false,
            fresh_for: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
        };
        let history = vec![
            Record::new(w, Level::Warn, "switch", "Switched from NAM to EU")
                .with("from", "NAM")
                .with("to", "EU")
                .with("reason", "outage")
                .with("failed_for_ms", 241_000),
        ];
        let html = render(&v.snapshot(&meta, SystemTime::now()), &history);
        for want in [
            "NAM",
            "EU",
            "APAC",
            "cloud.eu.ext.com",
            "<svg",
            "outage",
            "after 4m 1s",
        ] {
            assert!(html.contains(want), "missing {want}");
        }
        assert!(html.contains("&lt;x&gt;"), "error text is escaped");
        assert!(!html.contains("src="), "no external script or image");
        assert!(!html.contains("<link"), "no external stylesheet");
    }

    #[test]
    fn the_page_polls_status_and_carries_a_hidden_stale_banner() {
        let regions = crate::kernel::region::parse_failover_list(
            crate::kernel::region::DEFAULT_FAILOVER_LIST,
        )
        .unwrap();
        let w = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v = View::new(&regions, Duration::from_secs(240), w);
        let meta = Meta {
            service: "svc</script>".into(),
            pid: 1,
            started_at: w,
            dry_run: false,
            fresh_for: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
        };
        let snapshot = v.snapshot(&meta, w);
        let html = render(&snapshot, &[]);
        assert!(html.contains(
            "<div class=\"stale-banner\" id=\"stale\" role=\"alert\" hidden></div><main"
        ));
        assert!(html.contains("fetch('/status'"));
        assert!(html.contains(&format!("seen=\"{}\"", snapshot.updated_at)));
        assert!(html.contains("const P=3000,S=P*3/2"));
        assert_eq!(
            html.matches("</script>").count(),
            1,
            "the script cannot be closed early"
        );
    }
}
