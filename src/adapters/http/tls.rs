//! How the servers we talk to are verified: the system roots, a `--ca-cert` file holding a CA
//! or the exact certificate the tunnel presents (stunnel's own self-signed one, which OpenSSL
//! marks CA:TRUE), or nothing at all with `--insecure`. A failure says what to pass instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

/// How to verify the servers we talk to.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Trust only this file (PEM): CAs, or the exact certificates servers present.
    pub ca_cert: Option<PathBuf>,
    /// Skip verification entirely (`--insecure`).
    pub insecure: bool,
    /// Trust the system roots as well as `ca_cert` (standby checks reach public endpoints).
    pub system_roots: bool,
    /// The name sent as SNI and verified instead of the URL's host; `{cloud}` stands for the
    /// active region's cloud host (`--tls-server-name`). Only the probe uses it.
    pub server_name: Option<String>,
}

/// The rustls client configuration for `settings`; the error is one line naming the file.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = if settings.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        match &settings.ca_cert {
            Some(path) => {
                let verifier = Pinned::new(path, settings.system_roots, provider)?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth()
            }
            None => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (other sections, such as the key stunnel keeps in the same
/// file, are skipped); an error when there is none.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (no -----BEGIN CERTIFICATE----- block): pass the certificate the tunnel presents or its CA",
            path.display()
        ));
    }
    Ok(certs)
}

/// The verifier behind `--ca-cert`: a server presenting exactly one of the file's certificates
/// is trusted (its name, validity and signatures still checked), whatever its CA flag says;
/// any other certificate must chain to one of the file's certificates as usual.
#[derive(Debug)]
struct Pinned {
    path: PathBuf,
    pinned: Vec<CertificateDer<'static>>,
    chain: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl Pinned {
    fn new(path: &Path, system_roots: bool, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let pinned = load_certificates(path)?;
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(pinned.iter().cloned());
        if added == 0 {
            return Err(format!(
                "{}: no usable certificate in it (none parses as X.509)",
                path.display()
            ));
        }
        if system_roots {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Pinned {
            path: path.to_owned(),
            pinned,
            chain,
            provider,
        })
    }

    /// Turns a chain failure into what to do about it.
    fn explain(
        &self,
        error: rustls::Error,
        cert: &CertificateDer<'_>,
        name: &ServerName<'_>,
    ) -> rustls::Error {
        use CertificateError as C;
        let rustls::Error::InvalidCertificate(cert_error) = &error else {
            return error;
        };
        let hint = match cert_error {
            C::UnknownIssuer | C::Other(_) | C::BadSignature => format!(
                "the certificate of {} is not signed by --ca-cert {}: pass the certificate the tunnel presents (stunnel's cert) or its CA",
                name.to_str(),
                self.path.display()
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "the certificate is not valid for name {} (it is for {}): if the tunnel forwards the cloud's own certificate, set --tls-server-name '{{cloud}}'",
                name.to_str(),
                crate::adapters::http::tls_name::names_of(cert)
            ),
            _ => return error,
        };
        hint_error(hint)
    }
}

/// A TLS failure in words, without the library's type names: what happened and, where it
/// helps, what to do.
pub fn describe(error: &rustls::Error) -> String {
    use CertificateError as C;
    let rustls::Error::InvalidCertificate(cert_error) = error else {
        return match error {
            rustls::Error::AlertReceived(alert) => format!(
                "the server ended the TLS handshake with the alert {}",
                words(&format!("{alert:?}"))
            ),
            other => other.to_string(),
        };
    };
    match cert_error {
        C::Other(OtherError(inner)) => match inner.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => "the server presents a CA certificate (CA:TRUE) as its own, as stunnel's self-signed one is: pass that exact certificate with --ca-cert".to_string(),
            Some(e) => format!("the certificate is refused: {}", words(&format!("{e:?}"))),
            None => inner.to_string(),
        },
        C::UnknownIssuer => "the certificate is not signed by a CA of the system roots: pass the certificate the tunnel presents (stunnel's cert) or its CA with --ca-cert".to_string(),
        C::NotValidForName | C::NotValidForNameContext { .. } => "the certificate is not valid for the name the probe asked for: set --tls-server-name, or '{cloud}' behind a transparent forward".to_string(),
        C::Expired => "the certificate has expired".to_string(),
        C::NotValidYet => "the certificate is not valid yet".to_string(),
        C::BadEncoding => "the certificate cannot be parsed".to_string(),
        C::BadSignature => "the certificate's signature is wrong".to_string(),
        C::Revoked => "the certificate is revoked".to_string(),
        C::ExpiredContext { .. } | C::NotValidYetContext { .. } | C::InvalidPurposeContext { .. } => {
            cert_error.to_string()
        }
        other => format!("the certificate is refused: {}", words(&format!("{other:?}"))),
    }
}

/// `CaUsedAsEndEntity` -> `ca used as end entity`: a variant name as words.
fn words(name: &str) -> String {
    let name = name.split(['(', ' ', '{']).next().unwrap_or(name);
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A certificate error carrying a sentence for the operator.
fn hint_error(text: String) -> rustls::Error {
    #[derive(Debug)]
    struct Hint(String);
    impl std::fmt::Display for Hint {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Hint {}
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Hint(text)))))
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let checked = self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if !self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return checked.map_err(|e| self.explain(e, end_entity, server_name));
        }
        // The exact certificate the user pinned: the name must still match (its SANs, or its
        // CN when it has none, as stunnel's documented certificate), its extended key usage
        // must allow a TLS server, and the dates hold (webpki
        // checks them before the CA flag, so a date error is never hidden by it).
        crate::adapters::http::tls_name::check(end_entity, server_name).map_err(hint_error)?;
        if !crate::adapters::http::x509::allows_server_auth(end_entity) {
            return Err(hint_error(
                "the pinned certificate is not for a TLS server: its extended key usage lacks serverAuth; pin the certificate the tunnel serves with".to_string(),
            ));
        }
        match checked {
            Err(rustls::Error::InvalidCertificate(
                e @ (CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }
                | CertificateError::BadEncoding),
            )) => Err(rustls::Error::InvalidCertificate(e)),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The verifier behind `--insecure`: accepts any certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    //! The verifier on certificates made as users make them, and the probe over real TLS.
    use super::*;
    use crate::adapters::http::probe::{ErrorKind, HttpProbe, Probe};
    use crate::kernel::region::Region;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What `openssl req -new -x509 -config stunnel.cnf` makes: self-signed, CA:TRUE with
    /// pathlen 0, CN=localhost and no subject alternative name.
    fn stunnel_cert() -> (rcgen::Certificate, KeyPair) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.distinguished_name.push(DnType::CountryName, "PL");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Stunnel Developers");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap(), key)
    }

    /// A private CA and a leaf of it for `names`.
    fn private_ca(names: &[&str]) -> (rcgen::Certificate, rcgen::Certificate, KeyPair) {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "private CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        (ca_cert, leaf, leaf_key)
    }

    fn pem_file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn verifier(path: &Path) -> Pinned {
        Pinned::new(
            path,
            false,
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .unwrap()
    }

    fn verify(v: &Pinned, cert: &rcgen::Certificate, name: &str) -> Result<(), String> {
        v.verify_server_cert(
            cert.der(),
            &[],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn stunnels_own_certificate_pinned_verifies_with_its_name_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = stunnel_cert();
        // stunnel keeps key and certificate in one file; that file is what users pass.
        let path = pem_file(
            &dir,
            "stunnel.pem",
            &format!("{}{}", key.serialize_pem(), cert.pem()),
        );
        let v = verifier(&path);
        assert_eq!(verify(&v, &cert, "localhost"), Ok(()));
        let e = verify(&v, &cert, "127.0.0.1").unwrap_err();
        assert!(
            e.contains("not valid for name 127.0.0.1") && e.contains("CN=localhost"),
            "{e}"
        );
        let e = verify(&v, &cert, "cloud.eu.ext.com").unwrap_err();
        assert!(e.contains("not valid for name cloud.eu.ext.com"), "{e}");
    }

    #[test]
    fn another_certificate_than_the_pinned_one_says_what_to_pass() {
        let dir = tempfile::tempdir().unwrap();
        let (pinned, _) = stunnel_cert();
        let (presented, _) = stunnel_cert();
        let path = pem_file(&dir, "old.pem", &pinned.pem());
        let e = verify(&verifier(&path), &presented, "localhost").unwrap_err();
        assert!(
            e.contains(&format!("is not signed by --ca-cert {}", path.display()))
                && e.contains(
                    "pass the certificate the tunnel presents (stunnel's cert) or its CA"
                ),
            "{e}"
        );
    }

    #[test]
    fn a_pinned_certificate_with_only_an_ip_in_its_san_is_not_matched_by_its_cn() {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let v = verifier(&pem_file(&dir, "ip.pem", &cert.pem()));
        assert_eq!(verify(&v, &cert, "127.0.0.1"), Ok(()));
        let e = verify(&v, &cert, "localhost").unwrap_err();
        assert!(e.contains("not valid for name localhost"), "{e}");
    }

    #[test]
    fn a_pinned_certificate_not_for_tls_servers_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = stunnel_cert();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_only = params.self_signed(&key).unwrap();
        let v = verifier(&pem_file(&dir, "client.pem", &client_only.pem()));
        let e = verify(&v, &client_only, "localhost").unwrap_err();
        assert!(
            e.contains("not for a TLS server") && e.contains("serverAuth"),
            "{e}"
        );
        // Without the extension, any use is allowed (RFC 5280).
        params.extended_key_usages = Vec::new();
        let any_use = params.self_signed(&key).unwrap();
        let v = verifier(&pem_file(&dir, "any.pem", &any_use.pem()));
        assert_eq!(verify(&v, &any_use, "localhost"), Ok(()));
    }

    #[test]
    fn a_private_ca_verifies_its_leaves_for_their_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, leaf, _) = private_ca(&["cloud.eu.ext.com"]);
        let v = verifier(&pem_file(&dir, "ca.pem", &ca.pem()));
        assert_eq!(verify(&v, &leaf, "cloud.eu.ext.com"), Ok(()));
        let e = verify(&v, &leaf, "cloud.nam.ext.com").unwrap_err();
        assert!(e.contains("--tls-server-name '{cloud}'"), "{e}");
        let (_, stranger, _) = private_ca(&["cloud.eu.ext.com"]);
        let e = verify(&v, &stranger, "cloud.eu.ext.com").unwrap_err();
        assert!(e.contains("is not signed by --ca-cert"), "{e}");
    }

    #[test]
    fn a_pinned_certificate_out_of_its_dates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let v = verifier(&pem_file(&dir, "expired.pem", &cert.pem()));
        let e = verify(&v, &cert, "localhost").unwrap_err();
        assert!(e.contains("expired"), "{e}");
    }

    #[test]
    fn a_file_without_a_certificate_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let path = pem_file(&dir, "key.pem", &key.serialize_pem());
        let settings = TlsSettings {
            ca_cert: Some(path.clone()),
            ..TlsSettings::default()
        };
        let e = client_config(&settings).unwrap_err();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("holds no certificate"),
            "{e}"
        );
    }

    /// An HTTPS server on 127.0.0.1 presenting `cert`, answering 200; returns the port.
    async fn serve(cert: &rcgen::Certificate, key: &KeyPair) -> u16 {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 2048];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    fn probe(url: &str, ca: &Path, server_name: Option<&str>) -> HttpProbe {
        HttpProbe::new(
            url::Url::parse(url).unwrap(),
            vec![],
            Duration::from_secs(3),
            &TlsSettings {
                ca_cert: Some(ca.to_owned()),
                server_name: server_name.map(str::to_string),
                ..TlsSettings::default()
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn the_probe_trusts_stunnels_pinned_certificate_at_localhost() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = stunnel_cert();
        let port = serve(&cert, &key).await;
        let ca = pem_file(&dir, "stunnel.pem", &cert.pem());
        let ok = probe(&format!("https://localhost:{port}/health"), &ca, None)
            .probe()
            .await;
        assert_eq!(ok.result, Ok(200));
        let bad = probe(&format!("https://127.0.0.1:{port}/health"), &ca, None)
            .probe()
            .await
            .result
            .unwrap_err();
        // The loopback tunnel's own certificate, not verified: this host's configuration.
        assert_eq!(bad.kind, ErrorKind::TunnelMisconfigured, "{bad:?}");
        assert!(bad.detail.contains("--ca-cert"), "{bad:?}");
        let named = probe(
            &format!("https://127.0.0.1:{port}/health"),
            &ca,
            Some("localhost"),
        )
        .probe()
        .await;
        assert_eq!(named.result, Ok(200));
    }

    #[tokio::test]
    async fn the_cloud_placeholder_follows_the_active_region() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, leaf, key) = private_ca(&["cloud.eu.ext.com"]);
        let port = serve(&leaf, &key).await;
        let ca = pem_file(&dir, "ca.pem", &ca.pem());
        let eu = Region::new("EU", "cloud.eu.ext.com").unwrap();
        let nam = Region::new("NAM", "cloud.nam.ext.com").unwrap();
        let p = probe(
            &format!("https://127.0.0.1:{port}/health"),
            &ca,
            Some("{cloud}"),
        );
        // With `{cloud}` the certificate is the cloud's: its failures are the region's.
        let none = p.probe().await.result.unwrap_err();
        assert_eq!(none.kind, ErrorKind::Tls, "{none:?}");
        p.set_region(&eu);
        assert_eq!(p.probe().await.result, Ok(200));
        let for_nam = p.for_region(&nam);
        let e = for_nam.probe().await.result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Tls, "{e:?}");
        assert!(e.detail.contains("cloud.nam.ext.com"), "{e:?}");
        assert_eq!(p.probe().await.result, Ok(200), "the original keeps EU");
        p.set_region(&nam);
        assert_eq!(p.probe().await.result.unwrap_err().kind, ErrorKind::Tls);
    }
}
