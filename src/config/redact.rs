//! What may be shown of a value that can hold a credential: a URL without its user name,
//! password and query values, and supervisorctl's arguments without the password. Every
//! rendering (log lines, the journal, `/history`, Datadog, `config`, `check`, `status`) shows
//! URLs through [`url`], so none shows them another way. And what a peer said (supervisord,
//! supervisorctl, a daemon's status endpoint) without the control characters a terminal
//! would act on: [`printable`].

/// What stands for a hidden value.
pub const HIDDEN: &str = "***";

/// `text` with the user information of a URL (`user:password@`) and the value of each query
/// parameter replaced by `***`; the rest, `{…}` placeholders included, as written:
/// `https://u:p@h/x?token=t&debug` shows as `https://***@h/x?token=***&***` (a parameter
/// without `=` may be a token itself).
pub fn url(text: &str) -> String {
    let (before_fragment, fragment) = match text.find('#') {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let (base, query) = match before_fragment.find('?') {
        Some(at) => (&before_fragment[..at], Some(&before_fragment[at + 1..])),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(text.len());
    match base.find("://") {
        Some(at) => {
            let (scheme, rest) = base.split_at(at + 3);
            out.push_str(scheme);
            let end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            match authority.rfind('@') {
                Some(at) => {
                    out.push_str(HIDDEN);
                    out.push_str(&authority[at..]);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(base),
    }
    if let Some(query) = query {
        out.push('?');
        let hidden: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}={HIDDEN}"),
                None if pair.is_empty() => String::new(),
                None => HIDDEN.to_string(),
            })
            .collect();
        out.push_str(&hidden.join("&"));
    }
    out.push_str(fragment);
    out
}

/// supervisorctl's arguments with the value of `-p`/`--password` (in each spelling) as `***`.
pub fn args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push(HIDDEN.to_string());
            hide_next = false;
            continue;
        }
        match arg.as_str() {
            "-p" | "--password" => {
                hide_next = true;
                out.push(arg.clone());
            }
            _ if arg.starts_with("--password=") => out.push(format!("--password={HIDDEN}")),
            _ if arg.starts_with("-p") && !arg.starts_with("--") => out.push(format!("-p{HIDDEN}")),
            _ => out.push(arg.clone()),
        }
    }
    out
}

/// `text` without control characters (escape sequences, bells, carriage returns), which a
/// terminal would act on: a tab becomes a space, a newline stays, the others go.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            '\n' => Some('\n'),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_and_query_values_only() {
        let cases = [
            (
                "https://u:p@127.0.0.1:8443/v2/{org_id}/x?token=t&debug",
                "https://***@127.0.0.1:8443/v2/{org_id}/x?token=***&***",
            ),
            ("http://tok@h/health", "http://***@h/health"),
            ("https://h/a@b?x=1#frag", "https://h/a@b?x=***#frag"),
            ("tcp://h:1", "tcp://h:1"),
            ("https://h/p", "https://h/p"),
            ("https://h/p?", "https://h/p?"),
            ("not a url?secret=1", "not a url?secret=***"),
        ];
        for (given, shown) in cases {
            assert_eq!(url(given), shown, "{given}");
        }
    }

    #[test]
    fn supervisorctl_passwords_are_hidden_in_every_spelling() {
        let given: Vec<String> = [
            "-c",
            "/x.conf",
            "-p",
            "pw1",
            "--password",
            "pw2",
            "--password=pw3",
            "-ppw4",
            "-u",
            "me",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            args(&given),
            [
                "-c",
                "/x.conf",
                "-p",
                "***",
                "--password",
                "***",
                "--password=***",
                "-p***",
                "-u",
                "me"
            ]
        );
    }

    #[test]
    fn a_peers_escape_sequences_are_not_printed() {
        assert_eq!(
            printable("ok\u{1b}[2J\u{1b}]0;x\u{7}\r\u{9b}31m\tdone\nnext"),
            "ok[2J]0;x31m done\nnext"
        );
    }
}
