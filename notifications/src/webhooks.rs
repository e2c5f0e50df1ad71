//! Standard Webhooks (<https://www.standardwebhooks.com>): signing what Beslut sends and
//! verifying what other systems send it.
//!
//! A message is signed over `{webhook-id}.{webhook-timestamp}.{raw body}` with HMAC-SHA256 under
//! a secret written `whsec_` + base64. The receiver checks the signature in constant time and
//! refuses timestamps more than five minutes away, so a captured request cannot be replayed
//! later; a repeated `webhook-id` within the window is recognised by the caller's store.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// How far a webhook's timestamp may be from now, in seconds.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// A webhook secret: random bytes, written `whsec_` + base64.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the secret must be written whsec_ followed by base64 of at least 24 bytes")]
    BadSecret,
    #[error("the header {0} is missing")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than five minutes from the server's time")]
    OutsideTolerance,
    #[error("no signature in webhook-signature matches the body")]
    BadSignature,
}

impl WebhookSecret {
    /// Parses `whsec_…`. A secret without the prefix is accepted as base64 too.
    pub fn parse(text: &str) -> Result<WebhookSecret, WebhookError> {
        let body = text.trim().strip_prefix("whsec_").unwrap_or(text.trim());
        let bytes = STANDARD.decode(body).map_err(|_| WebhookError::BadSecret)?;
        if bytes.len() < 24 {
            return Err(WebhookError::BadSecret);
        }
        Ok(WebhookSecret(bytes))
    }

    /// A fresh random secret.
    pub fn generate() -> WebhookSecret {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        WebhookSecret(bytes)
    }

    /// The secret as configured and shown to the receiver: `whsec_` + base64.
    pub fn to_text(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body).finalize().into_bytes()))
    }

    /// Verifies a received message at `now` (seconds). The signature header may carry several
    /// space-separated signatures (during a secret rotation); one valid `v1` is enough.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), WebhookError> {
        let at: i64 = timestamp.trim().parse().map_err(|_| WebhookError::BadTimestamp)?;
        if (now - at).abs() > TOLERANCE_SECONDS {
            return Err(WebhookError::OutsideTolerance);
        }
        let valid = signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|sig| STANDARD.decode(sig).is_ok_and(|bytes| self.mac(id, at, body).verify_slice(&bytes).is_ok()));
        if valid { Ok(()) } else { Err(WebhookError::BadSignature) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's reference test suite.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn signs_like_the_specification() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, 1614265330, BODY), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verifies_and_refuses() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let sig = secret.sign(ID, 1614265330, BODY);
        assert_eq!(secret.verify(ID, "1614265330", &sig, BODY, 1614265330 + 60), Ok(()));
        let rotated = format!("v1,AAAA {sig}");
        assert_eq!(secret.verify(ID, "1614265330", &rotated, BODY, 1614265330), Ok(()));
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(secret.verify(ID, "1614265330", &sig, tampered, 1614265330), Err(WebhookError::BadSignature));
        assert_eq!(secret.verify("msg_other", "1614265330", &sig, BODY, 1614265330), Err(WebhookError::BadSignature));
        assert_eq!(secret.verify(ID, "1614265330", &sig, BODY, 1614265330 + 301), Err(WebhookError::OutsideTolerance));
        assert_eq!(secret.verify(ID, "soon", &sig, BODY, 0), Err(WebhookError::BadTimestamp));
    }

    #[test]
    fn secrets_round_trip_and_short_ones_are_refused() {
        let secret = WebhookSecret::generate();
        let again = WebhookSecret::parse(&secret.to_text()).unwrap();
        assert_eq!(again.sign("a", 1, b"x"), secret.sign("a", 1, b"x"));
        assert_eq!(WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(), WebhookError::BadSecret);
        assert_eq!(WebhookSecret::parse("whsec_not base64!").unwrap_err(), WebhookError::BadSecret);
    }
}
