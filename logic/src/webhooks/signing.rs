//! The signature every outbound webhook carries, so that its receiver can
//! tell a request from tern from a forged or replayed one:
//!
//! ```text
//! x-tern-timestamp: <unix seconds>
//! x-tern-signature: v1=<lower-hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! ```
//!
//! The timestamp is inside the signed text, so a receiver that refuses old
//! timestamps (a few minutes) also refuses replays of old requests.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header with the request's unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-tern-timestamp";
/// The header with the signature, `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-tern-signature";
/// The scheme prefix of [`SIGNATURE_HEADER`]'s value.
const SCHEME: &str = "v1=";

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp`:
/// `v1=` and the lower-hex HMAC-SHA256 of `"<timestamp>.<body>"` under
/// `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("{SCHEME}{}", hex::encode(tag))
}

/// Whether `signature` (a [`SIGNATURE_HEADER`] value) signs `body` sent at
/// `timestamp` under `secret`. The comparison takes the same time wherever
/// the first wrong byte is. Checking that `timestamp` is recent is the
/// caller's part.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(tag) = signature
        .strip_prefix(SCHEME)
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_hmac_sha256_of_timestamp_dot_body() {
        // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign(b"secret", 1_700_000_000, br#"{"a":1}"#),
            "v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn verify_accepts_its_own_signature_and_nothing_else() {
        let (secret, ts, body) = (b"k".as_slice(), 1_700_000_123, b"{}".as_slice());
        let sig = sign(secret, ts, body);
        assert!(verify(secret, ts, body, &sig));
        assert!(!verify(b"other", ts, body, &sig), "another secret");
        assert!(!verify(secret, ts + 1, body, &sig), "another timestamp");
        assert!(!verify(secret, ts, b"{ }", &sig), "another body");
        assert!(!verify(secret, ts, body, &sig[3..]), "no scheme");
        assert!(!verify(secret, ts, body, &sig.replace("v1=", "v2=")));
        assert!(!verify(secret, ts, body, "v1=zz"), "not hex");
        assert!(!verify(secret, ts, body, &sig[..sig.len() - 2]), "short");
        assert!(!verify(secret, ts, body, ""));
        let upper = format!("v1={}", sig[3..].to_uppercase());
        assert!(verify(secret, ts, body, &upper), "hex case does not matter");
    }
}
