//! Whether a pinned certificate is for the name we connect to: its subject alternative names
//! (webpki's check), or, for a certificate without that extension (stunnel's documented
//! certificate has only `CN = localhost`), its subject's common names.

use rustls::pki_types::{CertificateDer, ServerName};

/// `Ok` when `cert` is valid for `name`; else a sentence naming what the certificate is for.
pub fn check(cert: &CertificateDer<'_>, name: &ServerName<'_>) -> Result<(), String> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| format!("the pinned certificate cannot be parsed: {e}"))?;
    if parsed.verify_is_valid_for_subject_name(name).is_ok() {
        return Ok(());
    }
    let wanted = name.to_str();
    let common = common_names(parsed.subject());
    // RFC 6125: a certificate with a subjectAltName is matched by it alone, whatever it
    // holds (an IP address only, say); its CN counts only without one.
    let has_san = crate::adapters::http::x509::has_subject_alt_name(cert);
    if !has_san && common.iter().any(|cn| cn.eq_ignore_ascii_case(&wanted)) {
        return Ok(());
    }
    Err(format!(
        "the certificate is not valid for name {wanted} (it is for {}): use a probe URL host or --tls-server-name that the certificate names",
        names_of(cert)
    ))
}

/// What a certificate is for, for people: its DNS names, then its common names as `CN=..`.
pub fn names_of(cert: &CertificateDer<'_>) -> String {
    let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else {
        return "no name (it cannot be parsed)".to_string();
    };
    let known: Vec<String> = parsed
        .valid_dns_names()
        .map(str::to_string)
        .chain(
            common_names(parsed.subject())
                .into_iter()
                .map(|cn| format!("CN={cn}")),
        )
        .collect();
    if known.is_empty() {
        "no name".to_string()
    } else {
        known.join(", ")
    }
}

/// The common names (OID 2.5.4.3) of a DER-encoded `Name`, given without its outer SEQUENCE.
fn common_names(subject: &[u8]) -> Vec<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let mut names = Vec::new();
    let mut rdns = subject;
    while let Some((0x31, set, rest)) = next_tlv(rdns) {
        rdns = rest;
        let mut atvs = set;
        while let Some((0x30, atv, more)) = next_tlv(atvs) {
            atvs = more;
            let Some((0x06, oid, value)) = next_tlv(atv) else {
                continue;
            };
            // UTF8String, PrintableString, T61String, IA5String
            if let Some((0x0c | 0x13 | 0x14 | 0x16, text, _)) = next_tlv(value)
                && oid == CN
                && let Ok(text) = std::str::from_utf8(text)
            {
                names.push(text.to_string());
            }
        }
    }
    names
}

/// One DER tag-length-value: (tag, contents, the rest); `None` when malformed.
fn next_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn cert(sans: &[&str], cn: &str) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .clone()
    }

    fn name(n: &str) -> ServerName<'static> {
        ServerName::try_from(n.to_string()).unwrap()
    }

    #[test]
    fn subject_alternative_names_decide_when_present() {
        let c = cert(&["cloud.eu.ext.com"], "localhost");
        assert_eq!(check(&c, &name("cloud.eu.ext.com")), Ok(()));
        let e = check(&c, &name("localhost")).unwrap_err();
        assert!(
            e.contains("not valid for name localhost") && e.contains("cloud.eu.ext.com"),
            "{e}"
        );
    }

    #[test]
    fn the_common_name_counts_without_dns_names() {
        let c = cert(&[], "localhost");
        assert_eq!(check(&c, &name("localhost")), Ok(()));
        assert_eq!(check(&c, &name("LOCALHOST")), Ok(()));
        let e = check(&c, &name("127.0.0.1")).unwrap_err();
        assert!(e.contains("CN=localhost"), "{e}");
        assert!(check(&c, &name("cloud.eu.ext.com")).is_err());
    }

    #[test]
    fn malformed_names_yield_nothing() {
        assert!(common_names(&[0x31, 0x05, 0x30]).is_empty());
        assert!(common_names(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]).is_empty());
        assert!(common_names(&[]).is_empty());
    }
}
