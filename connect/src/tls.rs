//! TLS on the client listener (rustls with the ring provider). The
//! certificate is resolved per handshake from a slot that [`Tls::reload`]
//! replaces, so a renewed certificate takes effect for new connections
//! while existing ones keep the session they negotiated.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The listener's TLS: an acceptor whose certificate can be reloaded.
pub struct Tls {
    acceptor: TlsAcceptor,
    slot: Arc<Slot>,
}

/// The PEM files a certificate is read from.
struct Slot {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.slot.cert_path)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("cert", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads a PEM certificate chain (leaf first) and its PEM private key
    /// (PKCS#8, PKCS#1 or SEC1); fails with a message naming the file at fault.
    pub fn load(cert_path: &Path, key_path: &Path) -> io::Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read_pair(cert_path, key_path, &provider)?;
        let slot = Arc::new(Slot {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider: provider.clone(),
            current: RwLock::new(Arc::new(key)),
        });
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(slot.clone());
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            slot,
        })
    }

    /// Reads the files again. New handshakes use the new certificate;
    /// on error the old one stays.
    pub fn reload(&self) -> io::Result<()> {
        let key = read_pair(
            &self.slot.cert_path,
            &self.slot.key_path,
            &self.slot.provider,
        )?;
        *self.slot.current.write().expect("tls slot poisoned") = Arc::new(key);
        Ok(())
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

impl ResolvesServerCert for Slot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("tls slot poisoned").clone())
    }
}

fn read_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> io::Result<CertifiedKey> {
    let bad = |path: &Path, what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(cert_path, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| bad(key_path, e.to_string()))?;
    CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| bad(key_path, format!("does not fit the certificate: {e}")))
}
