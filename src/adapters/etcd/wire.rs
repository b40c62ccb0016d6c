//! The wire under the etcd client: HTTP/1.1 connections over TCP or TLS (with the fleet's CA
//! and client certificate), each kept for the next call, and the gateway's JSON answer or
//! error.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use serde_json::Value;
use tokio_rustls::TlsConnector;
use url::Url;

use crate::adapters::http::connect_tcp;
use crate::config::fleet::FleetSettings;

/// The most of one answer read: far more than any answer of the fleet's keys, and a longer
/// one fails the call rather than fill the memory.
pub(super) const MAX_ANSWER: usize = 1024 * 1024;

/// One member's client URL, ready to connect.
pub(super) struct Endpoint {
    pub url: Url,
    pub host: String,
    pub port: u16,
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// A kept connection to one endpoint.
pub(super) type Sender = SendRequest<Full<Bytes>>;

/// Opens a connection to `endpoint` (TLS when its URL is `https`).
pub(super) async fn connect(endpoint: &Endpoint) -> Result<Sender, String> {
    let tcp = connect_tcp(&endpoint.host, endpoint.port, &|_| {})
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    match &endpoint.tls {
        None => handshake(tcp).await,
        Some((connector, name)) => {
            let stream = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            handshake(stream).await
        }
    }
}

/// A POST of `body` to `path`, with the auth `token` if any, and `headers`.
pub(super) fn request(
    endpoint: &Endpoint,
    path: &str,
    body: &Value,
    token: Option<String>,
    headers: &[(&str, &str)],
) -> Result<http::Request<Full<Bytes>>, String> {
    let host = format!("{}:{}", endpoint.host, endpoint.port);
    let mut request = http::Request::post(path)
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())
}

/// One POST of `body` to `path` on the endpoint's kept connection `conn` (opened when there
/// is none, or it closed): the gateway's JSON answer. The connection is kept for the next
/// call once the answer is read whole; after an error it is closed.
pub(super) async fn exchange(
    endpoint: &Endpoint,
    conn: &mut Option<Sender>,
    path: &str,
    body: &Value,
    token: Option<String>,
) -> Result<Value, String> {
    let request = request(endpoint, path, body, token, &[])?;
    let mut sender = match conn.take() {
        Some(mut kept) => match kept.ready().await {
            Ok(()) => kept,
            Err(_) => connect(endpoint).await?,
        },
        None => connect(endpoint).await?,
    };
    let response = match sender.try_send_request(request).await {
        Ok(response) => response,
        Err(mut e) => match e.take_message() {
            // The kept connection closed before the request went out: once more on a new one.
            Some(request) => {
                sender = connect(endpoint).await?;
                sender
                    .send_request(request)
                    .await
                    .map_err(|e| e.to_string())?
            }
            None => return Err(e.into_error().to_string()),
        },
    };
    let status = response.status();
    let mut body = response.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_ANSWER {
                return Err(format!("HTTP {status} with an answer larger than 1 MiB"));
            }
            buf.extend_from_slice(&data);
        }
    }
    *conn = Some(sender);
    // A stream (lease keep-alive) answers in one message: the first whole JSON value.
    let v = serde_json::Deserializer::from_slice(&buf)
        .into_iter::<Value>()
        .next()
        .ok_or_else(|| format!("HTTP {status} with an empty answer"))?
        .map_err(|e| format!("HTTP {status}: {e}"))?;
    answer(status, v)
}

pub(super) fn answer(status: http::StatusCode, v: Value) -> Result<Value, String> {
    let error = v["error"].as_str().or(v["message"].as_str());
    match (status.is_success(), error) {
        (true, None) => Ok(v),
        (_, Some(e)) => Err(format!("HTTP {status}: {e}")),
        (false, None) => Err(format!("HTTP {status}")),
    }
}

async fn handshake<S>(stream: S) -> Result<Sender, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

pub(super) fn tls_config(s: &FleetSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    match &s.ca_cert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ca_cert {}: {e}", path.display()))?
            {
                let cert = cert.map_err(|e| format!("ca_cert {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_cert {}: {e}", path.display()))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let builder = builder.with_root_certificates(roots);
    let config = match (&s.client_cert, &s.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("client_cert {}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client_cert {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("client_key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client_cert/client_key: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
