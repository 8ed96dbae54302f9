//! The server's storage: one schema, the same SQL on SQLite and PostgreSQL.
//!
//! Queries go through sqlx's `Any` driver with `$1` placeholders (both databases
//! accept them) and only portable types: `TEXT` and `BIGINT`. Times are unix
//! milliseconds; claims and audit snapshots are JSON text.

use serde_json::{Map, Value};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

/// A storage error, with the database's message (never a secret: secrets are
/// bound as parameters, not written into SQL).
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct DbError(#[from] sqlx::Error);

/// Migrations in order; each runs once, recorded in `tiergate_schema`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        claims TEXT NOT NULL,
        password_hash TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    "CREATE TABLE clients (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE admins (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        private_pkcs8 TEXT NOT NULL,
        public_x TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        retired_at BIGINT
    )",
    "CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT
    )",
    "CREATE TABLE audit (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        before_claims TEXT NOT NULL,
        after_claims TEXT NOT NULL,
        at BIGINT NOT NULL
    )",
    "CREATE INDEX audit_user ON audit (user_id, at)",
    "CREATE TABLE idempotency (
        client_id TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status BIGINT NOT NULL,
        response TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (client_id, idem_key)
    )",
    "CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        admin_email TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen BIGINT NOT NULL
    )",
];

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Stable id (`usr_…`), the token's `sub`.
    pub id: String,
    /// Unique, lower-cased.
    pub email: String,
    /// The claims object.
    pub claims: Map<String, Value>,
    /// argon2id PHC string, when the user can sign in.
    pub password_hash: Option<String>,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// A signing key as stored.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// The key id.
    pub kid: String,
    /// PKCS#8 DER, base64.
    pub private_pkcs8: String,
    /// The Ed25519 public key, base64url (the JWK `x`).
    pub public_x: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// When a newer key replaced it.
    pub retired_at: Option<i64>,
}

/// One audit entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    /// `client:<id>` or `admin:<email>`.
    pub actor: String,
    /// The claims before the change.
    pub before: Value,
    /// The claims after it.
    pub after: Value,
    /// Unix milliseconds.
    pub at: i64,
}

/// The server's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
}

impl Db {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date.
    /// A bare path is a SQLite file.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        install_default_drivers();
        let url = if url.contains("://") || url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url
        };
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await?;
        let db = Db { pool };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS tiergate_schema (version BIGINT PRIMARY KEY)")
            .execute(&self.pool)
            .await?;
        let done: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tiergate_schema")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            let mut tx = self.pool.begin().await?;
            sqlx::query(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO tiergate_schema (version) VALUES ($1)")
                .bind(i as i64 + 1)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    // --- users -----------------------------------------------------------------

    /// The user with this email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, DbError> {
        let row = sqlx::query(
            "SELECT id, email, claims, password_hash, updated_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.map(user_row).transpose()
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, DbError> {
        let row = sqlx::query(
            "SELECT id, email, claims, password_hash, updated_at FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(user_row).transpose()
    }

    /// Writes a user's claims (creating the user), optionally their password hash,
    /// and an audit entry, in one transaction. Returns the stored user.
    pub async fn save_claims(
        &self,
        email: &str,
        actor: &str,
        change: impl FnOnce(&Map<String, Value>) -> Map<String, Value>,
        password_hash: Option<String>,
    ) -> Result<UserRow, DbError> {
        let mut tx = self.pool.begin().await?;
        let existing = sqlx::query(
            "SELECT id, email, claims, password_hash, updated_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?
        .map(user_row)
        .transpose()?;
        let now = now_ms();
        let (id, before, old_hash) = match existing {
            Some(u) => (u.id, u.claims, u.password_hash),
            None => {
                let id = super::random_id("usr");
                sqlx::query("INSERT INTO users (id, email, claims, created_at, updated_at) VALUES ($1, $2, '{}', $3, $3)")
                    .bind(&id)
                    .bind(email)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                (id, Map::new(), None)
            }
        };
        let after = change(&before);
        let hash = password_hash.or(old_hash);
        sqlx::query(
            "UPDATE users SET claims = $1, password_hash = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(Value::Object(after.clone()).to_string())
        .bind(&hash)
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if before != after {
            sqlx::query("INSERT INTO audit (id, user_id, actor, before_claims, after_claims, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(super::random_id("aud"))
                .bind(&id)
                .bind(actor)
                .bind(Value::Object(before).to_string())
                .bind(Value::Object(after.clone()).to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(UserRow {
            id,
            email: email.to_owned(),
            claims: after,
            password_hash: hash,
            updated_at: now,
        })
    }

    /// A user's audit entries, newest first.
    pub async fn audit(&self, user_id: &str) -> Result<Vec<AuditRow>, DbError> {
        let rows = sqlx::query("SELECT actor, before_claims, after_claims, at FROM audit WHERE user_id = $1 ORDER BY at DESC, id DESC")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditRow {
                    actor: r.try_get("actor")?,
                    before: json_text(r.try_get("before_claims")?),
                    after: json_text(r.try_get("after_claims")?),
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// Users whose email contains `search` (case-insensitive), by email, one page;
    /// and how many match in all.
    pub async fn users(
        &self,
        search: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<UserRow>, i64), DbError> {
        let escaped: String = search
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM users WHERE email LIKE $1 ESCAPE '\\'")
                .bind(&pattern)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        let rows = sqlx::query(
            "SELECT id, email, claims, password_hash, updated_at FROM users WHERE email LIKE $1 ESCAPE '\\' ORDER BY email LIMIT $2 OFFSET $3",
        )
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let users = rows.into_iter().map(user_row).collect::<Result<_, _>>()?;
        Ok((users, total))
    }

    // --- dashboard sessions ----------------------------------------------------------

    /// Stores a session (by the hash of its id).
    pub async fn insert_session(&self, id_hash: &str, admin_email: &str) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query("INSERT INTO sessions (id_hash, admin_email, created_at, last_seen) VALUES ($1, $2, $3, $3)")
            .bind(id_hash)
            .bind(admin_email)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A session: the admin, when it was created and last used.
    pub async fn session(&self, id_hash: &str) -> Result<Option<(String, i64, i64)>, DbError> {
        let row = sqlx::query(
            "SELECT admin_email, created_at, last_seen FROM sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("admin_email")?,
                r.try_get("created_at")?,
                r.try_get("last_seen")?,
            ))
        })
        .transpose()
    }

    /// Marks a session used now.
    pub async fn touch_session(&self, id_hash: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id_hash = $2")
            .bind(now_ms())
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // --- clients and admins ------------------------------------------------------

    /// Stores an API client.
    pub async fn insert_client(
        &self,
        id: &str,
        name: &str,
        secret_hash: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(secret_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A client's secret hash.
    pub async fn client_secret_hash(&self, id: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT secret_hash FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("secret_hash")).transpose()?)
    }

    /// Stores an admin (or replaces their password).
    pub async fn upsert_admin(&self, email: &str, password_hash: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE admins SET password_hash = $1 WHERE email = $2")
            .bind(password_hash)
            .bind(email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            sqlx::query(
                "INSERT INTO admins (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(super::random_id("adm"))
            .bind(email)
            .bind(password_hash)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An admin's password hash.
    pub async fn admin_password_hash(&self, email: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT password_hash FROM admins WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("password_hash")).transpose()?)
    }

    // --- signing keys --------------------------------------------------------------

    /// Every signing key, newest first.
    pub async fn keys(&self) -> Result<Vec<KeyRow>, DbError> {
        let rows = sqlx::query("SELECT kid, private_pkcs8, public_x, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid DESC")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(KeyRow {
                    kid: r.try_get("kid")?,
                    private_pkcs8: r.try_get("private_pkcs8")?,
                    public_x: r.try_get("public_x")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Adds a key and retires every older active key, in one transaction.
    pub async fn rotate_in(&self, key: &KeyRow) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_pkcs8, public_x, created_at) VALUES ($1, 'EdDSA', $2, $3, $4)")
            .bind(&key.kid)
            .bind(&key.private_pkcs8)
            .bind(&key.public_x)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // --- refresh tokens ------------------------------------------------------------

    /// Stores a refresh token's hash.
    pub async fn insert_refresh(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a refresh token used, once. Returns its user when it was unused and
    /// unexpired; a reused token revokes every refresh token of its user (it was
    /// probably stolen).
    pub async fn use_refresh(&self, token_hash: &str) -> Result<Option<String>, DbError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT user_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user_id: String = row.try_get("user_id")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_some() {
            sqlx::query(
                "UPDATE refresh_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
            )
            .bind(now)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(None);
        }
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((claimed == 1 && expires_at > now).then_some(user_id))
    }

    // --- idempotency ---------------------------------------------------------------

    /// A stored response for (client, key): the request hash, status and body.
    pub async fn idempotent(
        &self,
        client_id: &str,
        key: &str,
    ) -> Result<Option<(String, u16, String)>, DbError> {
        let row = sqlx::query("SELECT request_hash, status, response FROM idempotency WHERE client_id = $1 AND idem_key = $2")
            .bind(client_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let status: i64 = r.try_get("status")?;
            Ok((
                r.try_get("request_hash")?,
                status as u16,
                r.try_get("response")?,
            ))
        })
        .transpose()
    }

    /// Remembers a response for (client, key); the first writer wins.
    pub async fn remember(
        &self,
        client_id: &str,
        key: &str,
        request_hash: &str,
        status: u16,
        body: &str,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO idempotency (client_id, idem_key, request_hash, status, response, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
            .bind(client_id)
            .bind(key)
            .bind(request_hash)
            .bind(i64::from(status))
            .bind(body)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn user_row(r: sqlx::any::AnyRow) -> Result<UserRow, DbError> {
    let claims: String = r.try_get("claims")?;
    Ok(UserRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        claims: match json_text(claims) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        password_hash: r.try_get("password_hash")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn json_text(s: String) -> Value {
    serde_json::from_str(&s).unwrap_or(Value::Null)
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
