//! Certificates for the TLS tests: a throwaway CA that issues server
//! certificates for localhost and 127.0.0.1, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

use tern_client::TlsConfig;

pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
    /// The CA certificate, as a client would be given it.
    pub pem_path: PathBuf,
}

/// Where a server certificate and its key were written.
pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("tern test CA {name}"));
        let cert = params.self_signed(&key).expect("CA certificate");
        let pem_path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem_path, cert.pem()).expect("write CA");
        TestCa {
            cert,
            key,
            pem_path,
        }
    }

    /// Issues a certificate for localhost and 127.0.0.1 into `cert`/`key`
    /// under `dir` (overwriting them, as a renewal would).
    pub fn issue(&self, dir: &Path) -> ServerFiles {
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server certificate");
        let files = ServerFiles {
            cert: dir.join("server-cert.pem"),
            key: dir.join("server-key.pem"),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }

    /// A client that trusts only this CA, checking the name `localhost`.
    pub fn client(&self) -> TlsConfig {
        TlsConfig::with_ca_file("localhost", &self.pem_path).expect("client TLS config")
    }
}
