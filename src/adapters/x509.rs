//! Just enough X.509 to read a certificate's `notAfter`: the probe reports the earliest expiry
//! of the chain a server showed (`probe_ssl_earliest_cert_expiry`), so an alert can fire weeks
//! before a tunnel's certificate runs out. Verification is rustls's job, not this module's.

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
    fn garbage_is_none() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(earliest_not_after(&[]), None);
    }
}
