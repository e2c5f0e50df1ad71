//! Signed, per-person links: `/d/{token}`.
//!
//! A token binds one purpose, one case, one task, one recipient and one action, with an expiry
//! and a random nonce, under an HMAC-SHA256 with the installation's secret. The database keeps
//! only the SHA-256 of the token, so a leaked database gives no working links; the nonce makes
//! two tokens for the same action differ, so a token can be retired on its own.
//!
//! Opening a link never decides anything (link scanners open every link): the web layer shows a
//! confirmation page on GET and records the decision only on a POST carrying a per-page token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// What a link lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Decide a task with one action.
    Decide,
    /// Sign in to the web pages.
    SignIn,
}

/// The signed content of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "p")]
    pub purpose: Purpose,
    #[serde(rename = "c")]
    pub case: String,
    #[serde(rename = "t")]
    pub task: String,
    /// The address the link was sent to: the decision is bound to this person.
    #[serde(rename = "r")]
    pub recipient: String,
    #[serde(rename = "a")]
    pub action: String,
    /// Seconds since the epoch after which the link no longer works.
    #[serde(rename = "e")]
    pub expires: i64,
    #[serde(rename = "n")]
    pub nonce: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    /// Truncated, altered or forged: nothing about it may be revealed to the holder.
    #[error("the link is not valid")]
    Invalid,
    /// Genuine but too old: the holder may ask for a fresh link to the same address.
    #[error("the link has expired")]
    Expired(Box<Claims>),
}

/// The installation's signing key. At least 32 bytes; kept out of logs and `Debug`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Result<Secret, String> {
        if bytes.len() < 32 {
            return Err("the link secret must be at least 32 bytes".into());
        }
        Ok(Secret(bytes))
    }

    /// A fresh random secret, for a new installation.
    pub fn generate() -> Secret {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        Secret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

/// A random nonce for new claims.
pub fn nonce() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs claims into a URL-safe token: `payload.signature`, both base64url.
pub fn sign(secret: &Secret, claims: &Claims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let mut mac = secret.mac();
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// Checks a token's signature (in constant time) and expiry at `now` (seconds).
pub fn verify(secret: &Secret, token: &str, now: i64) -> Result<Claims, LinkError> {
    let (payload, signature) = token.split_once('.').ok_or(LinkError::Invalid)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| LinkError::Invalid)?;
    let mut mac = secret.mac();
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature).map_err(|_| LinkError::Invalid)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LinkError::Invalid)?;
    let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| LinkError::Invalid)?;
    if claims.expires < now {
        return Err(LinkError::Expired(Box::new(claims)));
    }
    Ok(claims)
}

/// A per-page form token: binds a confirmation page (the token's hash and the hash of the text
/// shown) and when it was issued, so a POST must come from a page this server rendered.
pub fn csrf(secret: &Secret, token_hash: &str, shown: &str, issued: i64) -> String {
    let mut mac = secret.mac();
    mac.update(format!("csrf\u{1f}{token_hash}\u{1f}{shown}\u{1f}{issued}").as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Checks a form token in constant time; pages older than `max_age` seconds are refused.
pub fn verify_csrf(
    secret: &Secret,
    value: &str,
    token_hash: &str,
    shown: &str,
    issued: i64,
    now: i64,
    max_age: i64,
) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(value) else { return false };
    let mut mac = secret.mac();
    mac.update(format!("csrf\u{1f}{token_hash}\u{1f}{shown}\u{1f}{issued}").as_bytes());
    mac.verify_slice(&bytes).is_ok() && issued <= now && now - issued <= max_age
}

/// The capability in a call's callback address (`/hooks/call/{token}`): the request id,
/// signed, so the called system needs no secret of its own to answer.
pub fn callback_token(secret: &Secret, request_id: &str) -> String {
    let id = URL_SAFE_NO_PAD.encode(request_id.as_bytes());
    let mut mac = secret.mac();
    mac.update(format!("call\u{1f}{request_id}").as_bytes());
    format!("{id}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The request id of a genuine callback token.
pub fn verify_callback(secret: &Secret, token: &str) -> Option<String> {
    let (id, signature) = token.split_once('.')?;
    let request_id = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let mut mac = secret.mac();
    mac.update(format!("call\u{1f}{request_id}").as_bytes());
    mac.verify_slice(&signature).ok()?;
    Some(request_id)
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires: i64) -> Claims {
        Claims {
            purpose: Purpose::Decide,
            case: "it-2026-0042".into(),
            task: "t3".into(),
            recipient: "anna.berg@exempelkommun.se".into(),
            action: "bifall".into(),
            expires,
            nonce: nonce(),
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let secret = Secret::generate();
        let token = sign(&secret, &claims(1_000));
        assert_eq!(verify(&secret, &token, 999).unwrap().action, "bifall");
        assert!(matches!(verify(&secret, &token, 1_001), Err(LinkError::Expired(c)) if c.task == "t3"));
    }

    #[test]
    fn altered_truncated_and_foreign_tokens_are_invalid() {
        let secret = Secret::generate();
        let token = sign(&secret, &claims(1_000));
        // Another action for the same task, re-encoded but not re-signed.
        let (payload, signature) = token.split_once('.').unwrap();
        let mut altered: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        altered.action = "avslag".into();
        let forged = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&altered).unwrap()));
        assert_eq!(verify(&secret, &forged, 0), Err(LinkError::Invalid));
        assert_eq!(verify(&secret, &token[..token.len() - 3], 0), Err(LinkError::Invalid));
        assert_eq!(verify(&secret, "nonsense", 0), Err(LinkError::Invalid));
        assert_eq!(verify(&Secret::generate(), &token, 0), Err(LinkError::Invalid));
    }

    #[test]
    fn two_tokens_for_the_same_action_differ() {
        let secret = Secret::generate();
        let a = sign(&secret, &claims(1_000));
        let b = sign(&secret, &claims(1_000));
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a).len(), 64);
    }

    #[test]
    fn secrets_are_never_printed() {
        assert_eq!(format!("{:?}", Secret::generate()), "Secret(…)");
        assert!(Secret::new(vec![1; 8]).is_err());
    }
}
