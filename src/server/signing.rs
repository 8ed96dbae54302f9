//! The server's signing keys: Ed25519, created on first start, rotated by
//! `tiergate keys rotate`, published as a JWKS while tokens they signed can live.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::db::{Db, DbError, KeyRow, now_ms};

/// A fresh Ed25519 key, not yet stored.
pub fn generate_key() -> KeyRow {
    let rng = SystemRandom::new();
    // Without a system random source no key can be made safely; a key aws-lc just
    // generated always parses. No input reaches either.
    #[allow(clippy::expect_used)]
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system random source works");
    #[allow(clippy::expect_used)]
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("a key just generated parses");
    let created_at = now_ms();
    KeyRow {
        kid: format!(
            "k{}-{}",
            chrono::Utc::now().format("%Y%m%d%H%M%S"),
            super::secrets::random_hex(3)
        ),
        private_pkcs8: STANDARD.encode(pkcs8.as_ref()),
        public_x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        created_at,
        retired_at: None,
    }
}

/// The key set as the server uses it: the active key to sign, the published ones.
struct KeyState {
    kid: String,
    encoding: EncodingKey,
    jwks: Value,
}

/// Signs access tokens with the active key; keeps the JWKS. Reloads the keys from
/// the database every second, so a `keys rotate` by another process (or
/// another instance) is picked up without a restart.
pub struct Signer {
    db: Db,
    ttl: Duration,
    cache: Mutex<Option<(Instant, Arc<KeyState>)>>,
}

// Short, so a rotation by another process shows within a second; one small query per second at most.
const KEY_CACHE: Duration = Duration::from_secs(1);

impl Signer {
    /// Loads the keys, creating the first one if there is none. Returns the signer
    /// and whether a key was created.
    pub async fn open(db: Db, ttl: Duration) -> Result<(Signer, bool), DbError> {
        // Decided under a lock, so instances starting together create one key.
        let created = db.ensure_active_key(&generate_key()).await?;
        Ok((
            Signer {
                db,
                ttl,
                cache: Mutex::new(None),
            },
            created,
        ))
    }

    async fn state(&self) -> Result<Arc<KeyState>, DbError> {
        if let Some((at, state)) = &*self.cache.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < KEY_CACHE
        {
            return Ok(state.clone());
        }
        let keys = self.db.keys().await?;
        let active = keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .or(keys.first());
        let Some(active) = active else {
            return Err(DbError::from(sqlx::Error::RowNotFound));
        };
        let der = STANDARD
            .decode(&active.private_pkcs8)
            .map_err(|e| sqlx::Error::Decode(e.into()))?;
        // Old keys stay published until every token they signed has expired.
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let horizon = now_ms().saturating_sub(ttl_ms).saturating_sub(60_000);
        let published: Vec<Value> = keys
            .iter()
            .filter(|k| k.retired_at.is_none_or(|r| r > horizon))
            .map(|k| json!({ "kty": "OKP", "crv": "Ed25519", "x": k.public_x, "kid": k.kid, "use": "sig", "alg": "EdDSA" }))
            .collect();
        let state = Arc::new(KeyState {
            kid: active.kid.clone(),
            encoding: EncodingKey::from_ed_der(&der),
            jwks: json!({ "keys": published }),
        });
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), state.clone()));
        Ok(state)
    }

    /// The published key set.
    pub async fn jwks(&self) -> Result<Value, DbError> {
        Ok(self.state().await?.jwks.clone())
    }

    /// The token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs an access token: `typ: at+jwt`, `kid`, and the given payload members
    /// plus `iat`, `exp`, `jti`.
    pub async fn sign(
        &self,
        mut payload: serde_json::Map<String, Value>,
    ) -> Result<String, DbError> {
        let now = chrono::Utc::now().timestamp();
        payload.insert("iat".into(), json!(now));
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        payload.insert("exp".into(), json!(now.saturating_add(ttl)));
        payload.insert("jti".into(), json!(super::secrets::random_hex(12)));
        self.sign_typed("at+jwt", &Value::Object(payload)).await
    }

    /// Signs Security Event Tokens (RFC 8417: `typ: secevent+jwt`, no `exp`) with
    /// the active key, as given (each carries its own `iat` and `jti`). One key-set
    /// lookup for the batch.
    pub async fn sign_events(&self, events: &[Value]) -> Result<Vec<String>, DbError> {
        let state = self.state().await?;
        events
            .iter()
            .map(|e| encode(&state, "secevent+jwt", e))
            .collect()
    }

    async fn sign_typed(&self, typ: &str, payload: &Value) -> Result<String, DbError> {
        encode(&*self.state().await?, typ, payload)
    }
}

fn encode(state: &KeyState, typ: &str, payload: &Value) -> Result<String, DbError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.into());
    header.kid = Some(state.kid.clone());
    jsonwebtoken::encode(&header, payload, &state.encoding)
        .map_err(|e| DbError::from(sqlx::Error::Protocol(format!("signing failed: {e}"))))
}
