//! Who may post call-status events: the one place webhook signatures are checked, over the raw
//! bytes, in constant time, before anything is parsed.
//!
//! Two schemes are accepted:
//! - **Standard Webhooks** (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>
//!   …`): HMAC-SHA256 of `{id}.{timestamp}.{body}` with a `whsec_` secret; several secrets may
//!   be configured at once for rotation; timestamps more than 5 minutes away are refused; the
//!   id is the idempotency key.
//! - **The original `X-Webhook-Signature`**: hex HMAC-SHA256 of the body with `WEBHOOK_SECRET`,
//!   for agents built before. It has no timestamp, so a replay is only caught as a duplicate;
//!   `DUECALL_WEBHOOK_STANDARD_ONLY=true` refuses it.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use standardwebhooks::Webhook;
use subtle::ConstantTimeEq;

/// Timestamps further than this from the server's clock are refused.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;
pub const LEGACY_HEADER: &str = "x-webhook-signature";
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The secrets webhooks are signed with.
#[derive(Default)]
pub struct Keys {
    /// `whsec_…` secrets, newest first, with their decoded keys; any of them verifies.
    standard: Vec<(SecretString, Vec<u8>, Webhook)>,
    /// The original scheme's shared secret(s).
    legacy: Vec<SecretString>,
    /// Refuse the original scheme.
    pub standard_only: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("standard", &self.standard.len())
            .field("legacy", &self.legacy.len())
            .field("standard_only", &self.standard_only)
            .finish()
    }
}

/// A secret that is not a usable `whsec_` secret.
#[derive(Debug, thiserror::Error)]
#[error("not a Standard Webhooks secret (whsec_ followed by base64): {0}")]
pub struct BadSecret(String);

impl Keys {
    /// `standard`: `whsec_` secrets (newest first); `legacy`: shared secrets for
    /// `X-Webhook-Signature`.
    pub fn new(
        standard: &[SecretString],
        legacy: &[SecretString],
        standard_only: bool,
    ) -> Result<Self, BadSecret> {
        let standard = standard
            .iter()
            .map(|secret| {
                let text = secret.expose_secret();
                if !text.starts_with("whsec_") {
                    return Err(BadSecret("missing the whsec_ prefix".into()));
                }
                let hook = Webhook::new(text).map_err(|e| BadSecret(e.to_string()))?;
                let key = decode_secret(text)?;
                Ok((secret.clone(), key, hook))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            standard,
            legacy: legacy.to_vec(),
            standard_only,
        })
    }

    /// A fresh random `whsec_` secret (for `duecall webhook-secret` and a process that has
    /// none configured).
    pub fn generate_secret() -> SecretString {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        SecretString::from(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// The newest Standard Webhooks secret: the platform's own, good for any report.
    pub fn signing_secret(&self) -> Option<&SecretString> {
        self.standard.first().map(|(secret, _, _)| secret)
    }

    /// The secret that signs reports about one call attempt, and nothing else: derived from the
    /// newest platform secret, handed to the agent with that call's metadata. A job payload
    /// that leaks lets nobody touch any other call, reminder or organization.
    pub fn attempt_secret(&self, attempt_id: i64) -> Option<SecretString> {
        let (_, key, _) = self.standard.first()?;
        Some(attempt_secret(key, attempt_id))
    }

    pub fn is_empty(&self) -> bool {
        self.standard.is_empty() && self.legacy.is_empty()
    }

    /// Checks `body`'s signature in `headers` at `now`. `attempt` is the call attempt the
    /// request says it is about (the callback URL's `attempt`): its own key is then accepted
    /// too, and a request verified with it is [`Scope::Attempt`].
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
        attempt: Option<i64>,
    ) -> Result<Verified, SignatureError> {
        if headers.contains_key(SIGNATURE_HEADER) {
            return self.verify_standard(headers, body, now, attempt);
        }
        if let Some(signature) = headers.get(LEGACY_HEADER) {
            if self.standard_only {
                return Err(SignatureError::StandardRequired);
            }
            let signature = signature
                .to_str()
                .map_err(|_| SignatureError::Invalid)?
                .trim();
            let signature = signature.strip_prefix("sha256=").unwrap_or(signature);
            let signature = hex::decode(signature).map_err(|_| SignatureError::Invalid)?;
            for secret in &self.legacy {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
                    .map_err(|_| SignatureError::Invalid)?;
                mac.update(body);
                // `verify_slice` compares in constant time.
                if mac.verify_slice(&signature).is_ok() {
                    return Ok(Verified::Legacy);
                }
            }
            return Err(SignatureError::Invalid);
        }
        Err(SignatureError::Missing)
    }

    fn verify_standard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
        attempt: Option<i64>,
    ) -> Result<Verified, SignatureError> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let id = header(ID_HEADER).ok_or(SignatureError::Missing)?;
        if id.len() > 200 {
            return Err(SignatureError::Invalid);
        }
        let timestamp: i64 = header(TIMESTAMP_HEADER)
            .ok_or(SignatureError::Missing)?
            .parse()
            .map_err(|_| SignatureError::Invalid)?;
        // Checked against this server's clock (a test's clock may not be the system's).
        let age = now.timestamp() - timestamp;
        if age > TOLERANCE_SECONDS {
            return Err(SignatureError::Stale);
        }
        if -age > TOLERANCE_SECONDS {
            return Err(SignatureError::Future);
        }
        let offered: Vec<&[u8]> = header(SIGNATURE_HEADER)
            .ok_or(SignatureError::Missing)?
            .split(' ')
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .map(|(_, signature)| signature.as_bytes())
            .collect();
        let scoped: Vec<(Scope, Webhook)> = attempt
            .into_iter()
            .flat_map(|attempt| {
                self.standard.iter().filter_map(move |(_, key, _)| {
                    let secret = attempt_secret(key, attempt);
                    Webhook::new(secret.expose_secret())
                        .ok()
                        .map(|hook| (Scope::Attempt(attempt), hook))
                })
            })
            .collect();
        let platform = self
            .standard
            .iter()
            .map(|(_, _, hook)| (Scope::Platform, hook));
        for (scope, hook) in platform.chain(scoped.iter().map(|(scope, hook)| (*scope, hook))) {
            let expected = hook
                .sign(id, timestamp, body)
                .map_err(|_| SignatureError::Invalid)?;
            let expected = expected
                .split_once(',')
                .map_or(&b""[..], |(_, s)| s.as_bytes());
            if offered
                .iter()
                .any(|signature| bool::from(signature.ct_eq(expected)))
            {
                return Ok(Verified::Standard {
                    id: id.to_owned(),
                    timestamp,
                    scope,
                });
            }
        }
        Err(SignatureError::Invalid)
    }
}

/// What a verified request may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Signed with a platform secret: any report.
    Platform,
    /// Signed with one attempt's key: reports about that attempt only.
    Attempt(i64),
}

fn decode_secret(text: &str) -> Result<Vec<u8>, BadSecret> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim_start_matches("whsec_"))
        .map_err(|e| BadSecret(e.to_string()))
}

/// The key that signs reports about attempt `attempt_id` only, from a platform `whsec_`
/// secret (what [`Keys::attempt_secret`] hands out, for senders that hold the platform secret).
pub fn derive_attempt_secret(
    platform: &SecretString,
    attempt_id: i64,
) -> Result<SecretString, BadSecret> {
    Ok(attempt_secret(
        &decode_secret(platform.expose_secret())?,
        attempt_id,
    ))
}

/// HMAC-SHA256 of the attempt's id under the platform key, as a `whsec_` secret.
fn attempt_secret(platform_key: &[u8], attempt_id: i64) -> SecretString {
    use base64::Engine;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(platform_key).expect("HMAC takes keys of any length");
    mac.update(format!("duecall-attempt-key:{attempt_id}").as_bytes());
    SecretString::from(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// How a request proved it is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Standard Webhooks, with the delivery's id (the idempotency key), its timestamp, and what
    /// the key it was signed with may touch.
    Standard {
        id: String,
        timestamp: i64,
        scope: Scope,
    },
    /// The original `X-Webhook-Signature`.
    Legacy,
}

/// Why a request is refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the request is not signed (webhook-id, webhook-timestamp and webhook-signature, or X-Webhook-Signature)"
    )]
    Missing,
    #[error("the signature does not match")]
    Invalid,
    #[error("the webhook timestamp is more than 5 minutes old (a replay, or a clock far off)")]
    Stale,
    #[error("the webhook timestamp is more than 5 minutes ahead")]
    Future,
    #[error("only Standard Webhooks signatures are accepted here")]
    StandardRequired,
}

impl SignatureError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Invalid => "invalid_signature",
            Self::Stale => "stale_timestamp",
            Self::Future => "future_timestamp",
            Self::StandardRequired => "standard_webhooks_required",
        }
    }
}

/// Signs like a Standard Webhooks sender: the three headers for `body`.
pub fn sign_standard(
    secret: &SecretString,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], BadSecret> {
    let hook = Webhook::new(secret.expose_secret()).map_err(|e| BadSecret(e.to_string()))?;
    let signature = hook
        .sign(id, timestamp, body)
        .map_err(|e| BadSecret(e.to_string()))?;
    Ok([
        (ID_HEADER, id.to_owned()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, signature),
    ])
}

/// Signs like the original agents: the hex HMAC-SHA256 of the body.
pub fn sign_legacy(secret: &SecretString, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn secret(n: u8) -> SecretString {
        use base64::Engine;
        SecretString::from(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([n; 32])
        ))
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const BODY: &[u8] = br#"{"reminder_id":1,"event_type":"call_answered"}"#;

    #[test]
    fn standard_signatures_verify_with_any_current_secret() {
        let now = Utc::now();
        let keys = Keys::new(&[secret(2), secret(1)], &[], false).unwrap();
        for s in [secret(1), secret(2)] {
            let signed = sign_standard(&s, "msg_1", now.timestamp(), BODY).unwrap();
            assert_eq!(
                keys.verify(&headers(&signed), BODY, now, None),
                Ok(Verified::Standard {
                    id: "msg_1".into(),
                    timestamp: now.timestamp(),
                    scope: Scope::Platform,
                })
            );
        }
        let retired = sign_standard(&secret(3), "msg_1", now.timestamp(), BODY).unwrap();
        assert_eq!(
            keys.verify(&headers(&retired), BODY, now, None),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn several_signatures_in_one_header_pass_if_one_matches() {
        let now = Utc::now();
        let keys = Keys::new(&[secret(1)], &[], false).unwrap();
        let mut signed = sign_standard(&secret(1), "m", now.timestamp(), BODY).unwrap();
        let old = sign_standard(&secret(9), "m", now.timestamp(), BODY).unwrap();
        signed[2].1 = format!("{} {}", old[2].1, signed[2].1);
        assert!(keys.verify(&headers(&signed), BODY, now, None).is_ok());
    }

    #[test]
    fn tampering_and_stale_or_future_timestamps_are_refused() {
        let now = Utc::now();
        let keys = Keys::new(&[secret(1)], &[], false).unwrap();
        let ts = now.timestamp();
        let signed = sign_standard(&secret(1), "m", ts, BODY).unwrap();
        let tampered = br#"{"reminder_id":2,"event_type":"call_answered"}"#;
        assert_eq!(
            keys.verify(&headers(&signed), tampered, now, None),
            Err(SignatureError::Invalid)
        );
        let mut other_id = signed.clone();
        other_id[0].1 = "m2".into();
        assert_eq!(
            keys.verify(&headers(&other_id), BODY, now, None),
            Err(SignatureError::Invalid)
        );
        let old = sign_standard(&secret(1), "m", ts - TOLERANCE_SECONDS - 1, BODY).unwrap();
        assert_eq!(
            keys.verify(&headers(&old), BODY, now, None),
            Err(SignatureError::Stale)
        );
        let ahead = sign_standard(&secret(1), "m", ts + TOLERANCE_SECONDS + 1, BODY).unwrap();
        assert_eq!(
            keys.verify(&headers(&ahead), BODY, now, None),
            Err(SignatureError::Future)
        );
        let edge = sign_standard(&secret(1), "m", ts - TOLERANCE_SECONDS + 5, BODY).unwrap();
        assert!(keys.verify(&headers(&edge), BODY, now, None).is_ok());
        assert_eq!(
            keys.verify(&HeaderMap::new(), BODY, now, None),
            Err(SignatureError::Missing)
        );
        let mut no_id = signed.to_vec();
        no_id.remove(0);
        assert_eq!(
            keys.verify(&headers(&no_id), BODY, now, None),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn the_original_signature_verifies_unless_refused() {
        let now = Utc::now();
        let shared = SecretString::from("shared-secret");
        let keys = Keys::new(&[secret(1)], std::slice::from_ref(&shared), false).unwrap();
        let sig = sign_legacy(&shared, BODY);
        let h = headers(&[(LEGACY_HEADER, sig.clone())]);
        assert_eq!(keys.verify(&h, BODY, now, None), Ok(Verified::Legacy));
        let prefixed = headers(&[(LEGACY_HEADER, format!("sha256={sig}"))]);
        assert_eq!(
            keys.verify(&prefixed, BODY, now, None),
            Ok(Verified::Legacy)
        );
        assert_eq!(
            keys.verify(&h, b"{}", now, None),
            Err(SignatureError::Invalid)
        );
        let bad = headers(&[(LEGACY_HEADER, "zz".into())]);
        assert_eq!(
            keys.verify(&bad, BODY, now, None),
            Err(SignatureError::Invalid)
        );
        let strict = Keys::new(&[secret(1)], &[shared], true).unwrap();
        assert_eq!(
            strict.verify(&h, BODY, now, None),
            Err(SignatureError::StandardRequired)
        );
    }

    #[test]
    fn an_attempts_key_verifies_only_for_that_attempt() {
        let now = Utc::now();
        let keys = Keys::new(&[secret(2), secret(1)], &[], false).unwrap();
        let own = keys.attempt_secret(7).unwrap();
        assert_ne!(
            own.expose_secret(),
            keys.attempt_secret(8).unwrap().expose_secret()
        );
        let signed = sign_standard(&own, "m", now.timestamp(), BODY).unwrap();
        let verified = keys.verify(&headers(&signed), BODY, now, Some(7)).unwrap();
        assert_eq!(
            verified,
            Verified::Standard {
                id: "m".into(),
                timestamp: now.timestamp(),
                scope: Scope::Attempt(7)
            }
        );
        assert_eq!(
            keys.verify(&headers(&signed), BODY, now, Some(8)),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            keys.verify(&headers(&signed), BODY, now, None),
            Err(SignatureError::Invalid)
        );
        // Derived from the previous platform secret during a rotation: still accepted.
        let older = Keys::new(&[secret(1)], &[], false)
            .unwrap()
            .attempt_secret(7)
            .unwrap();
        let signed = sign_standard(&older, "m", now.timestamp(), BODY).unwrap();
        assert!(keys.verify(&headers(&signed), BODY, now, Some(7)).is_ok());
        // A platform signature stays a platform signature.
        let platform = sign_standard(&secret(2), "m", now.timestamp(), BODY).unwrap();
        let verified = keys
            .verify(&headers(&platform), BODY, now, Some(7))
            .unwrap();
        assert!(matches!(
            verified,
            Verified::Standard {
                scope: Scope::Platform,
                ..
            }
        ));
    }

    #[test]
    fn secrets_must_be_whsec() {
        assert!(Keys::new(&[SecretString::from("abc")], &[], false).is_err());
        assert!(Keys::new(&[SecretString::from("whsec_!!!")], &[], false).is_err());
        let generated = Keys::generate_secret();
        assert!(Keys::new(&[generated], &[], false).is_ok());
    }
}
