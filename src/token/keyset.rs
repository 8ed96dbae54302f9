//! A set of verification keys and the rule for picking one for a token.

use std::sync::Arc;

use super::algorithm::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;

use super::keys::{KeyError, VerifyingKey};

/// Verification keys. A token's key is chosen by its header:
///
/// - with a `kid`: the key with that id; failing that, the keys without an id;
/// - without a `kid`: the keys without an id.
///
/// Among those, only keys bound to the header's `alg` are tried.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

/// Why a JWKS document could not be read as a key set (a key inside it that cannot
/// be used is skipped instead, and reported beside the set).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Not JSON.
    #[error("not a JWKS document (expected {{\"keys\": [...]}}): {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("not a JWKS document: expected a JSON object")]
    NotAnObject,
    /// An object without a `keys` list.
    #[error("not a JWKS document: expected an object with a \"keys\" list")]
    NoKeysList,
}

/// Why no key may verify a token.
pub(crate) enum Miss {
    /// Keys exist for this kid (or kid-less), but none is bound to the header's alg;
    /// carries the algorithm of the first such key.
    WrongAlgorithm(Algorithm),
    /// No key has this kid and there are no kid-less keys.
    UnknownKid,
}

impl KeySet {
    /// A set of the given keys.
    pub fn new(keys: Vec<VerifyingKey>) -> KeySet {
        KeySet { keys }
    }

    /// Reads a JWKS document (`{"keys": [...]}`). Keys this verifier must not or
    /// cannot use are skipped and returned with the reason: symmetric keys, `use: enc`,
    /// unsupported types or curves, and every key whose `kid` appears more than once
    /// (an ambiguous id could let an attacker-chosen key win).
    pub fn from_jwks(body: &[u8]) -> Result<(KeySet, Vec<String>), JwksError> {
        // An object with a `keys` list (RFC 7517 §5), nothing else: serde would also
        // read a struct from a JSON array, so `[[…]]` passed as a key set until the
        // fuzzer found it.
        let doc: Value =
            serde_json::from_slice(body).map_err(|e| JwksError::NotJson(e.to_string()))?;
        let entries = match doc {
            Value::Object(mut members) => match members.remove("keys") {
                Some(Value::Array(entries)) => entries,
                _ => return Err(JwksError::NoKeysList),
            },
            _ => return Err(JwksError::NotAnObject),
        };
        let mut skipped = Vec::new();
        let mut keys: Vec<VerifyingKey> = Vec::new();
        for (i, raw) in entries.into_iter().enumerate() {
            let parsed = serde_json::from_value::<Jwk>(raw)
                .map_err(|e| KeyError::Invalid {
                    alg: Algorithm::RS256,
                    reason: e.to_string(),
                })
                .and_then(|jwk| VerifyingKey::from_jwk(&jwk));
            match parsed {
                Ok(k) => keys.push(k),
                Err(KeyError::Invalid { reason, .. }) => {
                    skipped.push(format!("key {i}: unreadable: {reason}"))
                }
                Err(e) => skipped.push(format!("key {i}: {e}")),
            }
        }
        let mut dupes: Vec<Arc<str>> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(kid) = &k.kid
                && keys
                    .get(i.saturating_add(1)..)
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o.kid.as_ref() == Some(kid))
                && !dupes.contains(kid)
            {
                dupes.push(kid.clone());
            }
        }
        if !dupes.is_empty() {
            keys.retain(|k| k.kid.as_ref().is_none_or(|kid| !dupes.contains(kid)));
            for kid in dupes {
                skipped.push(format!(
                    "kid {kid:?}: appears more than once; all its keys ignored"
                ));
            }
        }
        Ok((KeySet { keys }, skipped))
    }

    /// The keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys that may verify a token with this header, without allocating.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> Result<impl Iterator<Item = &'a VerifyingKey> + 'a, Miss> {
        let pool_kid = kid.filter(|kid| self.has_kid(kid));
        let in_pool = move |k: &&VerifyingKey| k.kid.as_deref() == pool_kid;
        let Some(first) = self.keys.iter().find(in_pool) else {
            return Err(Miss::UnknownKid);
        };
        if !self.keys.iter().filter(in_pool).any(|k| k.alg == alg) {
            return Err(Miss::WrongAlgorithm(first.alg));
        }
        Ok(self.keys.iter().filter(move |k| in_pool(k) && k.alg == alg))
    }
}
