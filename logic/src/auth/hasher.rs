//! Password hashing (argon2id) on a fixed pool of threads.
//!
//! Each argon2 hash needs ~19 MiB of working memory. Hashing on tokio's
//! blocking pool lets every short-lived thread leave such a block in its
//! malloc arena, so a login storm grows the process by hundreds of MiB.
//! Here each of `threads` workers owns one buffer, allocated once and reused:
//! memory is bounded, and hashing can never take more than `threads` cores
//! away from message traffic. Hashes are standard PHC strings, the same as
//! `Argon2::default().hash_password` produces.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::{mpsc, oneshot, OnceCell};
use tracing::error;

/// Stored hashes asking for more memory than this (64 MiB) are refused as corrupt.
const MAX_M_COST_KIB: u32 = 64 * 1024;
/// Jobs waiting for a worker before callers wait to enqueue.
const QUEUE: usize = 1024;

/// Hashing or verifying a password failed. argon2's errors are kept as
/// they are, but not as a `source`: without the crate's `std` feature they
/// do not implement `std::error::Error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    /// argon2 refused the parameters or failed to hash.
    #[error("password hashing: {0}")]
    Argon2(argon2::Error),
    /// A PHC string (stored, or being made) is malformed.
    #[error("password hashing: {0}")]
    Phc(argon2::password_hash::Error),
    /// A stored hash asks for more memory than any hash made here.
    #[error("password hashing: stored hash asks for {0} KiB")]
    TooCostly(u32),
    /// A stored hash lacks a part it needs.
    #[error("password hashing: stored hash has no {0}")]
    Incomplete(&'static str),
    /// The hashing threads are gone (start-up failed, or shutting down).
    #[error("password hashing: hashing threads stopped")]
    Stopped,
}

impl From<argon2::Error> for HashError {
    fn from(e: argon2::Error) -> Self {
        HashError::Argon2(e)
    }
}

impl From<argon2::password_hash::Error> for HashError {
    fn from(e: argon2::password_hash::Error) -> Self {
        HashError::Phc(e)
    }
}

enum Job {
    Hash {
        password: String,
        done: oneshot::Sender<Result<String, HashError>>,
    },
    Verify {
        password: String,
        phc: String,
        done: oneshot::Sender<Result<bool, HashError>>,
    },
}

/// Handle to the hashing threads; they stop when it is dropped.
pub(crate) struct Hasher {
    tx: mpsc::Sender<Job>,
    dummy: OnceCell<String>,
}

impl Hasher {
    pub(crate) fn start(threads: usize) -> Hasher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tern-hash-{i}"))
                .spawn(move || worker(rx));
            if let Err(e) = spawned {
                error!(error = %e, "could not start a hashing thread");
            }
        }
        Hasher {
            tx,
            dummy: OnceCell::new(),
        }
    }

    /// A new PHC hash of `password` with a random salt.
    pub(crate) async fn hash(&self, password: String) -> Result<String, HashError> {
        let (done, rx) = oneshot::channel();
        self.submit(Job::Hash { password, done }).await?;
        rx.await.map_err(|_| stopped())?
    }

    /// Whether `password` matches the PHC hash `phc` (constant-time compare).
    pub(crate) async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        let (done, rx) = oneshot::channel();
        self.submit(Job::Verify {
            password,
            phc,
            done,
        })
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    /// A valid hash of a random password, computed once: verifying against it
    /// makes an unknown username cost as much as a wrong password.
    pub(crate) async fn dummy(&self) -> Result<String, HashError> {
        self.dummy
            .get_or_try_init(|| self.hash(hex::encode(rand::random::<[u8; 16]>())))
            .await
            .cloned()
    }

    async fn submit(&self, job: Job) -> Result<(), HashError> {
        self.tx.send(job).await.map_err(|_| stopped())
    }
}

fn stopped() -> HashError {
    HashError::Stopped
}

fn worker(rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // One worker waits on the channel at a time; the others wait for the lock.
        let job = match rx.lock() {
            Ok(mut rx) => rx.blocking_recv(),
            Err(_) => return,
        };
        match job {
            Some(Job::Hash { password, done }) => {
                let _ = done.send(hash(&mut memory, password.as_bytes()));
            }
            Some(Job::Verify {
                password,
                phc,
                done,
            }) => {
                let _ = done.send(verify(&mut memory, password.as_bytes(), &phc));
            }
            None => return,
        }
    }
}

fn hash(memory: &mut Vec<Block>, password: &[u8]) -> Result<String, HashError> {
    let params = Params::default();
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let out = run(
        &argon,
        &params,
        memory,
        password,
        salt_bytes,
        Params::DEFAULT_OUTPUT_LEN,
    )?;
    let phc = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(out),
    };
    Ok(phc.to_string())
}

fn verify(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    if params.m_cost() > MAX_M_COST_KIB {
        return Err(HashError::TooCostly(params.m_cost()));
    }
    let expected = parsed.hash.ok_or(HashError::Incomplete("output"))?;
    let salt = parsed.salt.ok_or(HashError::Incomplete("salt"))?;
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let out = run(
        &argon,
        &params,
        memory,
        password,
        salt_bytes,
        expected.len(),
    )?;
    // Output's equality is constant-time.
    Ok(out == expected)
}

fn run(
    argon: &Argon2<'_>,
    params: &Params,
    memory: &mut Vec<Block>,
    password: &[u8],
    salt: &[u8],
    out_len: usize,
) -> Result<Output, HashError> {
    let need = params.block_count();
    if memory.len() < need {
        memory.resize(need, Block::default());
    }
    Output::init_with(out_len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..need])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(HashError::from)
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[tokio::test]
    async fn hashes_are_standard_phc_and_verify_both_ways() {
        let h = Hasher::start(2);
        let ours = h.hash("hunter2hunter2".into()).await.unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"hunter2hunter2", &parsed)
            .is_ok());

        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"other password", &salt)
            .unwrap()
            .to_string();
        assert!(h
            .verify("other password".into(), theirs.clone())
            .await
            .unwrap());
        assert!(!h.verify("wrong password".into(), theirs).await.unwrap());
        assert!(!h.verify("hunter2hunter3".into(), ours).await.unwrap());
    }

    #[tokio::test]
    async fn corrupt_or_greedy_stored_hashes_are_errors_not_panics() {
        let h = Hasher::start(1);
        assert!(h.verify("x".into(), "not a hash".into()).await.is_err());
        let greedy =
            "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo";
        assert!(h.verify("x".into(), greedy.into()).await.is_err());
        let d1 = h.dummy().await.unwrap();
        assert_eq!(d1, h.dummy().await.unwrap(), "computed once");
    }
}
