//! Signing keys for the stand-ins, made at test time: nothing secret is
//! kept in the repository, not even a test key.

use std::sync::OnceLock;

use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

/// A private key as a provider's settings hold it, and its public half as
/// the stand-in verifies with it.
#[derive(Clone)]
pub struct TestKey {
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as in an APNs `.p8`
    /// file or a service account's JSON.
    pub private_pem: String,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").finish_non_exhaustive()
    }
}

/// A new EC P-256 key: an APNs `.p8` key.
pub fn p256_key() -> TestKey {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .expect("generating a P-256 key");
    TestKey {
        private_pem: key.serialize_pem(),
        public_pem: key.public_key_pem(),
    }
}

/// An RSA-2048 key: a service account's. Generating one takes a moment,
/// so each process makes it once.
pub fn rsa_key() -> TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(new_rsa_key).clone()
}

/// Another RSA-2048 key, that no stand-in trusts.
pub fn other_rsa_key() -> TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(new_rsa_key).clone()
}

fn new_rsa_key() -> TestKey {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("generating an RSA key");
    TestKey {
        private_pem: key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encoding an RSA key")
            .to_string(),
        public_pem: key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("encoding an RSA public key"),
    }
}
