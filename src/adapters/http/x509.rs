//! Just enough X.509 to read a certificate's `notAfter`: the probe reports the earliest expiry
//! of the chain a server showed (`probe_ssl_earliest_cert_expiry`), so an alert can fire weeks
//! before a tunnel's certificate runs out. And two extensions that a pinned certificate is held
//! to beside webpki's checks: whether it has a subject alternative name at all (then its common
//! name does not count), and whether its extended key usage allows a TLS server.
//! Verification is rustls's job, not this module's.

use rustls::pki_types::CertificateDer;

/// One DER element: its tag and contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let num = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (mo, d, h, mi, s) = (num(0)?, num(2)?, num(4)?, num(6)?, num(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(year, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// A certificate's `notAfter`, in Unix seconds.
pub fn not_after(cert: &[u8]) -> Option<i64> {
    let (_, certificate, _) = element(cert)?;
    let (_, tbs, _) = element(certificate)?;
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature, issuer, then validity.
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (_, validity, _) = element(rest)?;
    let (_, _, after_not_before) = element(validity)?;
    let (tag, when, _) = element(after_not_before)?;
    time(tag, when)
}

/// The contents (`extnValue`) of a certificate's extension `oid`; `None` when absent or when
/// the certificate cannot be read.
fn extension<'a>(cert: &'a [u8], oid: &[u8]) -> Option<&'a [u8]> {
    let (_, certificate, _) = element(cert)?;
    let (_, tbs, _) = element(certificate)?;
    let mut rest = tbs;
    while let Some((tag, contents, after)) = element(rest) {
        rest = after;
        // [3] EXPLICIT Extensions, the last field of a v3 TBSCertificate.
        if tag != 0xa3 {
            continue;
        }
        let (_, mut list, _) = element(contents)?;
        while let Some((_, ext, more)) = element(list) {
            list = more;
            let (_, id, fields) = element(ext)?;
            if id != oid {
                continue;
            }
            let (mut tag, mut value, after) = element(fields)?;
            if tag == 0x01 {
                (tag, value, _) = element(after)?;
            }
            return (tag == 0x04).then_some(value);
        }
        return None;
    }
    None
}

/// Whether the certificate has a subject alternative name extension, whatever it names.
pub fn has_subject_alt_name(cert: &[u8]) -> bool {
    const SAN: &[u8] = &[0x55, 0x1d, 0x11];
    extension(cert, SAN).is_some()
}

/// Whether the certificate may serve TLS: no extended key usage (any use, RFC 5280), or one
/// that lists serverAuth, as webpki asks of a chain.
pub fn allows_server_auth(cert: &[u8]) -> bool {
    const EKU: &[u8] = &[0x55, 0x1d, 0x25];
    const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    let Some(value) = extension(cert, EKU) else {
        return true;
    };
    let Some((0x30, mut purposes, _)) = element(value) else {
        return false;
    };
    while let Some((tag, oid, more)) = element(purposes) {
        if tag == 0x06 && oid == SERVER_AUTH {
            return true;
        }
        purposes = more;
    }
    false
}

/// The earliest `notAfter` of a chain, in Unix seconds.
pub fn earliest_not_after(chain: &[CertificateDer<'_>]) -> Option<i64> {
    chain.iter().filter_map(|c| not_after(c)).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_expiring(y: i32, m: u8, d: u8) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.not_after = rcgen::date_time_ymd(y, m, d);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_not_after_in_both_time_encodings() {
        // 2030 is written as UTCTime, 2060 as GeneralizedTime.
        assert_eq!(not_after(&cert_expiring(2030, 6, 1)), Some(1_906_502_400));
        assert_eq!(not_after(&cert_expiring(2060, 1, 1)), Some(2_840_140_800));
        let chain = [
            CertificateDer::from(cert_expiring(2060, 1, 1)),
            CertificateDer::from(cert_expiring(2030, 6, 1)),
        ];
        assert_eq!(earliest_not_after(&chain), Some(1_906_502_400));
    }

    #[test]
    fn reads_the_subject_alt_name_and_the_extended_key_usage() {
        use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().unwrap();
        let make = |sans: Vec<String>, ekus: Vec<ExtendedKeyUsagePurpose>| {
            let mut p = CertificateParams::new(sans).unwrap();
            p.extended_key_usages = ekus;
            p.self_signed(&key).unwrap().der().to_vec()
        };
        let plain = make(Vec::new(), Vec::new());
        assert!(!has_subject_alt_name(&plain) && allows_server_auth(&plain));
        let ip = make(vec!["127.0.0.1".into()], Vec::new());
        assert!(has_subject_alt_name(&ip));
        let client = make(Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth]);
        assert!(!allows_server_auth(&client));
        let both = make(
            Vec::new(),
            vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ],
        );
        assert!(allows_server_auth(&both));
        assert!(!has_subject_alt_name(b"") && allows_server_auth(b""));
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(earliest_not_after(&[]), None);
    }
}
