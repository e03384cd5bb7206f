//! The secrets of one authorization request: the PKCE code verifier and its S256 challenge
//! (RFC 7636), and the `state` that ties the browser's callback to this request. Both come from
//! the operating system's CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A code verifier and the challenge sent in its place.
pub struct Pkce {
    /// Sent only to the token endpoint, with the code.
    pub verifier: String,
    /// Sent to the authorize endpoint: `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A new verifier: 32 random bytes, base64url, 43 characters (RFC 7636 §4.1).
    pub fn new() -> Result<Pkce, String> {
        let verifier = random_url_safe(32)?;
        Ok(Pkce {
            challenge: challenge(&verifier),
            verifier,
        })
    }
}

/// The S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A new `state`: 16 random bytes, base64url (only characters APS allows in it).
pub fn new_state() -> Result<String, String> {
    random_url_safe(16)
}

fn random_url_safe(n: usize) -> Result<String, String> {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b)
        .map_err(|e| format!("the operating system has no random numbers to give: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_long_enough_unreserved_and_fresh() {
        let a = Pkce::new().unwrap();
        let b = Pkce::new().unwrap();
        assert_eq!(a.verifier.len(), 43);
        assert!(a
            .verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)));
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge, challenge(&a.verifier));
        let s = new_state().unwrap();
        assert_eq!(s.len(), 22);
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)));
        assert_ne!(s, new_state().unwrap());
    }
}
