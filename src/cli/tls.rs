//! `--tls-cert` / `--tls-key`: TLS on the client listener, for `serve` and
//! `connect`. Without them the listener speaks plain TCP (for development
//! and for a TLS-terminating proxy in front).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use tern_connect::Tls;

#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// PEM certificate chain, leaf first: the client listener speaks TLS.
    /// Read again on SIGHUP (existing connections keep theirs).
    #[arg(long, env = "TERN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TERN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The listener's TLS, or `None` for plain TCP.
    pub fn load(&self) -> anyhow::Result<Option<Arc<Tls>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let tls = Tls::load(cert, key).context("loading --tls-cert / --tls-key")?;
        Ok(Some(Arc::new(tls)))
    }
}
