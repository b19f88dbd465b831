//! TLS for [`Client::connect_tls`](crate::Client::connect_tls) and
//! [`SessionOptions::tls`](crate::SessionOptions::tls): rustls with the
//! ring provider, trusting the system's roots or a given CA.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::ClientError;

/// Whom to trust and which name the server's certificate must carry.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) connector: TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Trusts the operating system's root certificates; the server's
    /// certificate must be valid for `server_name` (a DNS name or an IP).
    pub fn system_roots(server_name: &str) -> Result<TlsConfig, ClientError> {
        let mut roots = RootCertStore::empty();
        // Some unreadable files among the system's certificates are normal;
        // only no usable root at all is an error.
        let found = rustls_native_certs::load_native_certs();
        let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            let why = found
                .errors
                .first()
                .map_or_else(String::new, |e| format!(": {e}"));
            return Err(ClientError::Tls(format!(
                "no usable system root certificate{why}"
            )));
        }
        TlsConfig::with_roots(server_name, roots)
    }

    /// Trusts only the CA certificate(s) in a PEM file, e.g. a private CA
    /// or the server's self-signed certificate.
    pub fn with_ca_file(server_name: &str, ca_pem: &Path) -> Result<TlsConfig, ClientError> {
        let certs = CertificateDer::pem_file_iter(ca_pem)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ClientError::Tls(format!("{}: {e}", ca_pem.display())))?;
        TlsConfig::with_ca_certs(server_name, certs)
    }

    /// Trusts only the given CA certificates (DER).
    pub fn with_ca_certs(
        server_name: &str,
        certs: Vec<CertificateDer<'static>>,
    ) -> Result<TlsConfig, ClientError> {
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ClientError::Tls(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ClientError::Tls("no CA certificate given".into()));
        }
        TlsConfig::with_roots(server_name, roots)
    }

    fn with_roots(server_name: &str, roots: RootCertStore) -> Result<TlsConfig, ClientError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| ClientError::Tls(format!("server name {server_name:?}: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfig {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}
