//! The TLS settings a user gives, checked before anything runs: a `--ca-cert` file must hold a
//! certificate, and a `--tls-server-name` must give a valid name for every region.

use std::path::Path;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use url::Url;

use crate::kernel::region::Region;

/// The placeholder of `--tls-server-name` for the active region's cloud host.
pub const CLOUD: &str = "{cloud}";

/// `Ok` when `path` holds at least one PEM certificate, every one of them X.509; other PEM
/// sections (stunnel keeps its key in the same file) are allowed.
pub(super) fn check_ca_file(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{} is not a readable file: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (no -----BEGIN CERTIFICATE----- block): pass the certificate the tunnel presents (stunnel's cert) or its CA",
            path.display()
        ));
    }
    for (i, cert) in certs.iter().enumerate() {
        webpki::EndEntityCert::try_from(cert).map_err(|e| {
            format!(
                "certificate {} in {} is not a valid X.509 certificate ({e})",
                i + 1,
                path.display()
            )
        })?;
    }
    Ok(())
}

/// `Ok` when `template` (with `{cloud}` filled in for each region) is a TLS server name, and
/// the probe speaks TLS at all.
pub(super) fn check_server_name(
    template: &str,
    regions: &[Region],
    url: &Url,
) -> Result<(), String> {
    if url.scheme() != "https" {
        return Err(format!(
            "'{template}' needs an https:// probe URL (the probe URL is {}://)",
            url.scheme()
        ));
    }
    if template.replace(CLOUD, "").contains(['{', '}']) {
        return Err(format!(
            "'{template}': the only placeholder is {CLOUD} (the active region's cloud host)"
        ));
    }
    for region in regions {
        let name = template.replace(CLOUD, &region.cloud);
        if let Err(e) = ServerName::try_from(name.as_str()) {
            return Err(format!(
                "'{template}' gives '{name}' for region {}, which is not a TLS server name ({e})",
                region.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Vec<Region> {
        vec![
            Region::new("NAM", "cloud.nam.ext.com").unwrap(),
            Region::new("EU", "cloud.eu.ext.com").unwrap(),
        ]
    }

    #[test]
    fn server_names() {
        let https = Url::parse("https://localhost:8443/x").unwrap();
        let r = regions();
        assert_eq!(check_server_name("{cloud}", &r, &https), Ok(()));
        assert_eq!(check_server_name("tunnel.{cloud}", &r, &https), Ok(()));
        assert_eq!(check_server_name("cloud.eu.ext.com", &r, &https), Ok(()));
        assert_eq!(check_server_name("127.0.0.1", &r, &https), Ok(()));
        for bad in ["", "{region}", "{cloud", "a b", "bad_name!"] {
            assert!(check_server_name(bad, &r, &https).is_err(), "{bad}");
        }
        let http = Url::parse("http://localhost:8080/x").unwrap();
        let e = check_server_name("{cloud}", &r, &http).unwrap_err();
        assert!(e.contains("https://"), "{e}");
    }

    #[test]
    fn ca_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let both = write(
            "stunnel.pem",
            &format!("{}{}", key.serialize_pem(), cert.pem()),
        );
        assert_eq!(check_ca_file(&both), Ok(()));
        for (name, text) in [
            ("key.pem", key.serialize_pem()),
            ("garbage.pem", "not a certificate\n".to_string()),
            ("empty.pem", String::new()),
        ] {
            let p = write(name, &text);
            let e = check_ca_file(&p).unwrap_err();
            assert!(
                e.contains(&p.display().to_string()) && e.contains("no certificate"),
                "{e}"
            );
        }
        let broken = write(
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = check_ca_file(&broken).unwrap_err();
        assert!(e.contains("not a valid X.509"), "{e}");
        let e = check_ca_file(&dir.path().join("missing.pem")).unwrap_err();
        assert!(e.contains("not a readable file"), "{e}");
    }
}
