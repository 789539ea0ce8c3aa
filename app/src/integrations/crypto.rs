//! Secrets at rest: OAuth tokens are stored encrypted with AES-256-GCM.
//!
//! Every encryption draws a fresh random 96-bit nonce. The associated data binds a ciphertext
//! to its organization and purpose, so a token copied into another organization's row does
//! not decrypt. The stored form is `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`: the key
//! id lets keys rotate — the current key encrypts, previous keys still decrypt, and callers
//! re-encrypt with the current key on their next write (see [`Opened::stale`]).

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;

/// Why a key ring could not be built (each message names the variable to fix).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{variable} must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)")]
    BadKey { variable: &'static str },
    #[error("{variable}: key ids are 1–32 letters, digits, '-' or '_'")]
    BadKeyId { variable: &'static str },
    #[error("{variable}: expected `id:base64key` pairs separated by commas")]
    BadPrevious { variable: &'static str },
    #[error("{variable}: key id {id:?} is used twice")]
    DuplicateId { variable: &'static str, id: String },
}

/// Why a stored secret could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("not an encrypted secret")]
    Malformed,
    #[error("encrypted with key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("the secret does not decrypt (wrong key, organization or purpose, or tampered)")]
    Rejected,
}

/// An opened secret, and whether it should be re-encrypted with the current key.
pub struct Opened {
    pub secret: SecretString,
    pub stale: bool,
}

/// The encryption keys: the current one and any previous ones kept for decryption.
#[derive(Clone)]
pub struct Keyring {
    current_id: String,
    keys: HashMap<String, Key<Aes256Gcm>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Keyring")
            .field("current_id", &self.current_id)
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_key(text: &str, variable: &'static str) -> Result<Key<Aes256Gcm>, KeyError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| KeyError::BadKey { variable })?;
    if bytes.len() != 32 {
        return Err(KeyError::BadKey { variable });
    }
    Ok(*Key::<Aes256Gcm>::from_slice(&bytes))
}

impl Keyring {
    /// Builds the ring from the configured current key (`id`, base64) and previous keys
    /// (`id:base64,id:base64`, possibly empty). `variables` name the settings in errors.
    pub fn new(
        current_id: &str,
        current_key: &str,
        previous: &str,
        variables: [&'static str; 3],
    ) -> Result<Self, KeyError> {
        let [id_var, key_var, previous_var] = variables;
        if !valid_id(current_id) {
            return Err(KeyError::BadKeyId { variable: id_var });
        }
        let mut keys = HashMap::new();
        keys.insert(current_id.to_owned(), decode_key(current_key, key_var)?);
        for pair in previous.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, key) = pair.split_once(':').ok_or(KeyError::BadPrevious {
                variable: previous_var,
            })?;
            let id = id.trim();
            if !valid_id(id) {
                return Err(KeyError::BadKeyId {
                    variable: previous_var,
                });
            }
            if keys
                .insert(id.to_owned(), decode_key(key, previous_var)?)
                .is_some()
            {
                return Err(KeyError::DuplicateId {
                    variable: previous_var,
                    id: id.to_owned(),
                });
            }
        }
        Ok(Self {
            current_id: current_id.to_owned(),
            keys,
        })
    }

    pub fn current_id(&self) -> &str {
        &self.current_id
    }

    fn aad(org_id: i64, purpose: &str) -> String {
        format!("duecall/{purpose}/org/{org_id}")
    }

    /// Encrypts `plaintext` for `org_id` and `purpose` with the current key.
    pub fn seal(&self, org_id: i64, purpose: &str, plaintext: &SecretString) -> String {
        let cipher = Aes256Gcm::new(&self.keys[&self.current_id]);
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(org_id, purpose);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!(
            "{VERSION}.{}.{}",
            self.current_id,
            URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Decrypts what [`seal`](Self::seal) produced for the same organization and purpose.
    pub fn open(&self, org_id: i64, purpose: &str, stored: &str) -> Result<Opened, OpenError> {
        let mut parts = stored.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() <= NONCE_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = Self::aad(org_id, purpose);
        let plain = Aes256Gcm::new(key)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Rejected)?;
        let text = String::from_utf8(plain).map_err(|_| OpenError::Rejected)?;
        Ok(Opened {
            secret: SecretString::from(text),
            stale: id != self.current_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: [&str; 3] = ["KEY_ID", "KEY", "PREVIOUS"];

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn sealed_secrets_open_only_for_their_organization_and_purpose() {
        let ring = Keyring::new("k1", &key(1), "", VARS).unwrap();
        let sealed = ring.seal(7, "zoho-refresh", &secret("1000.abc.def"));
        assert!(sealed.starts_with("v1.k1."));
        assert!(!sealed.contains("1000.abc.def"));
        let opened = ring.open(7, "zoho-refresh", &sealed).unwrap();
        assert_eq!(opened.secret.expose_secret(), "1000.abc.def");
        assert!(!opened.stale);
        assert_eq!(
            ring.open(8, "zoho-refresh", &sealed).err(),
            Some(OpenError::Rejected)
        );
        assert_eq!(
            ring.open(7, "zoho-access", &sealed).err(),
            Some(OpenError::Rejected)
        );
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let ring = Keyring::new("k1", &key(1), "", VARS).unwrap();
        let a = ring.seal(1, "p", &secret("same"));
        let b = ring.seal(1, "p", &secret("same"));
        assert_ne!(a, b);
    }

    #[test]
    fn tampering_is_rejected() {
        let ring = Keyring::new("k1", &key(1), "", VARS).unwrap();
        let sealed = ring.seal(1, "p", &secret("token"));
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(ring.open(1, "p", &tampered).is_err());
        assert_eq!(
            ring.open(1, "p", "plain-token").err(),
            Some(OpenError::Malformed)
        );
    }

    #[test]
    fn rotation_keeps_old_secrets_readable_and_marks_them_stale() {
        let old = Keyring::new("k1", &key(1), "", VARS).unwrap();
        let sealed = old.seal(3, "p", &secret("token"));
        let rotated = Keyring::new("k2", &key(2), &format!("k1:{}", key(1)), VARS).unwrap();
        let opened = rotated.open(3, "p", &sealed).unwrap();
        assert_eq!(opened.secret.expose_secret(), "token");
        assert!(opened.stale);
        let resealed = rotated.seal(3, "p", &opened.secret);
        assert!(resealed.starts_with("v1.k2."));
        assert!(!rotated.open(3, "p", &resealed).unwrap().stale);
        let without_old = Keyring::new("k2", &key(2), "", VARS).unwrap();
        assert_eq!(
            without_old.open(3, "p", &sealed).err(),
            Some(OpenError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn bad_configuration_names_the_variable() {
        assert_eq!(
            Keyring::new("k1", "short", "", VARS).err(),
            Some(KeyError::BadKey { variable: "KEY" })
        );
        assert_eq!(
            Keyring::new("bad id!", &key(1), "", VARS).err(),
            Some(KeyError::BadKeyId { variable: "KEY_ID" })
        );
        assert_eq!(
            Keyring::new("k1", &key(1), "nocolon", VARS).err(),
            Some(KeyError::BadPrevious {
                variable: "PREVIOUS"
            })
        );
        assert_eq!(
            Keyring::new("k1", &key(1), &format!("k1:{}", key(2)), VARS).err(),
            Some(KeyError::DuplicateId {
                variable: "PREVIOUS",
                id: "k1".into()
            })
        );
        let debug = format!("{:?}", Keyring::new("k1", &key(1), "", VARS).unwrap());
        assert!(!debug.contains(&key(1)));
    }
}
