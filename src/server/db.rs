//! The server's storage: one schema, the same SQL on SQLite and PostgreSQL.
//!
//! Queries go through sqlx's `Any` driver with `$1` placeholders (both databases
//! accept them) and only portable types: `TEXT` and `BIGINT`. Times are unix
//! milliseconds; claims and audit snapshots are JSON text.
//!
//! # Concurrency
//!
//! Every write that reads first (merging claims, using a refresh token, an
//! idempotency key, creating the first signing key) runs in a *write transaction*
//! ([`Db::write`]) that holds the lock it needs before it reads:
//!
//! - **SQLite**: one writer at a time, on a connection of its own. Writers queue for
//!   that connection (a pool of one) and then `BEGIN IMMEDIATE`, which takes the
//!   database's write lock up front, so a transaction never has to upgrade a read lock
//!   (the upgrade is what answered "database is locked" under concurrency: SQLite
//!   cannot wait for it). Other processes on the same file (a second instance, the
//!   CLI) wait through the busy timeout. The file is in WAL mode, so readers — on their
//!   own pool — never wait for the writer, and the writer never queues behind them for
//!   a connection (when it shared the readers' pool, 64 clients' credential look-ups
//!   stretched each write 2.5×: 676 writes/s against 1,662 for the bare SQL).
//! - **PostgreSQL**: the row is locked with `SELECT … FOR UPDATE` before it is read, so
//!   concurrent merges into one user — from any number of instances — apply one after
//!   the other, each on the latest claims. We chose the row lock over a conditional
//!   update with retries: 64 merges into one user would retry O(n²) times, while the
//!   lock queues them once. New users are created with `INSERT … ON CONFLICT DO
//!   NOTHING` first, so two first writes for one email never race.
//!
//! Migrations run in one transaction under `pg_advisory_xact_lock` (PostgreSQL) or
//! `BEGIN IMMEDIATE` (SQLite), so any number of instances can start together on an
//! empty database. (sqlx's own migrator takes the same advisory lock, but it keeps its
//! history in `_sqlx_migrations`; databases made by earlier tiergate versions record
//! theirs in `tiergate_schema`, which this keeps reading.)

use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Row, Transaction};

/// A storage error, with the database's message (never a secret: secrets are
/// bound as parameters, not written into SQL).
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct DbError(#[from] sqlx::Error);

/// How long a SQLite connection waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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
    // A per-user counter of applied changes (claims, password): what a token was
    // minted from, and what a change feed reports.
    "ALTER TABLE users ADD COLUMN claims_version BIGINT NOT NULL DEFAULT 0",
    // Refresh tokens rotate within a family (one sign-in); reuse revokes the family.
    // Rows from before this column have none and are a family of their own.
    "ALTER TABLE refresh_tokens ADD COLUMN family TEXT",
    "CREATE INDEX refresh_user ON refresh_tokens (user_id)",
    "CREATE INDEX refresh_family ON refresh_tokens (family)",
    // The claims-change feed: one row per applied change, numbered without gaps by
    // the sequencer (`claims_feed` holds the last number), kept for the longest
    // token lifetime.
    "CREATE TABLE claims_changes (
        seq BIGINT PRIMARY KEY,
        user_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        kind TEXT NOT NULL,
        changed TEXT NOT NULL,
        actor TEXT NOT NULL,
        at BIGINT NOT NULL
    )",
    "CREATE INDEX claims_changes_at ON claims_changes (at)",
    "CREATE TABLE claims_feed (id BIGINT PRIMARY KEY, last_seq BIGINT NOT NULL)",
    "INSERT INTO claims_feed (id, last_seq) VALUES (1, 0)",
    // Secrets the server makes for itself (the demo app's feed credentials), shared
    // by every instance on the database — which holds the signing keys anyway.
    "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    // Changes written but not yet numbered: a write transaction appends here (no
    // lock shared with other writers); the sequencer numbers them after they commit.
    "CREATE TABLE claims_pending (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        kind TEXT NOT NULL,
        changed TEXT NOT NULL,
        actor TEXT NOT NULL,
        at BIGINT NOT NULL
    )",
];

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Stable id (`usr_…`), the token's `sub`.
    pub id: String,
    /// Unique, lower-cased.
    pub email: String,
    /// The claims object (empty when the stored text is unreadable: see `unreadable`).
    pub claims: Map<String, Value>,
    /// The stored claims text, when it is not a JSON object.
    pub unreadable: Option<String>,
    /// argon2id PHC string, when the user can sign in.
    pub password_hash: Option<String>,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// How many changes have been applied to this user (claims or password).
    pub claims_version: i64,
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

/// An `Idempotency-Key` with the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    /// The authenticated client: keys are per client.
    pub client_id: &'a str,
    /// The header's value.
    pub key: &'a str,
    /// A hash of the request body: the same key with another body is refused.
    pub request_hash: &'a str,
}

/// A response remembered under an idempotency key.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    /// The hash of the request that produced it.
    pub request_hash: String,
    /// Its status.
    pub status: u16,
    /// Its JSON body.
    pub body: String,
}

/// What a claims write did.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClaimsWrite<E> {
    /// The change was applied (or changed nothing); the user as now stored.
    Applied(UserRow),
    /// The idempotency key was used before: the first response, not applied again.
    Replayed(StoredResponse),
    /// The change function refused the stored claims with this error.
    Refused(E),
    /// The stored claims are not a JSON object; nothing was written.
    Unreadable(String),
}

/// A claims write: who, for which email, with which password and idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct ClaimsWriteOptions<'a> {
    /// The user's email (created if new).
    pub email: &'a str,
    /// `client:<id>` or `admin:<email>`, for the audit log.
    pub actor: &'a str,
    /// A new password hash; setting one revokes the user's refresh tokens.
    pub password_hash: Option<&'a str>,
    /// Apply at most once per key.
    pub idempotency: Option<IdempotencyKey<'a>>,
}

/// What kind of change a feed entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The user's claims changed (the claims API, the dashboard).
    Claims,
    /// The user's sessions were revoked (a new password, a reused refresh token):
    /// tokens minted before it should be refused although the claims are the same.
    Revocation,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Claims => "claims",
            ChangeKind::Revocation => "revocation",
        }
    }
}

/// One entry of the claims-change feed.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    /// Its place in the feed (the cursor), gapless in commit order.
    pub seq: i64,
    /// The user (the token's `sub`).
    pub user_id: String,
    /// The user's claims version after the change.
    pub version: i64,
    /// Claims or revocation.
    pub kind: ChangeKind,
    /// The names of the claims that changed (never their values).
    pub changed: Vec<String>,
    /// `client:<id>`, `admin:<email>` or `system`.
    pub actor: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// What using a refresh token found.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshUse {
    /// It was valid and is now used: its user, and a new token stored in its family.
    Rotated {
        /// The user.
        user_id: String,
    },
    /// Unknown or expired.
    Invalid,
    /// Used a moment ago (within the race grace): two refreshes raced;
    /// the loser is refused without revoking the winner's new token.
    Raced,
    /// Used long ago: probably stolen. Its family is now revoked.
    Reused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The server's database.
#[derive(Clone)]
pub struct Db {
    /// Reads (and single-statement writes).
    pool: AnyPool,
    /// Write transactions: on SQLite a pool of one connection, on PostgreSQL `pool`.
    writer: AnyPool,
    backend: Backend,
    /// The latest feed entry this process knows of, set by [`Db::keep_feed`] when
    /// it numbers changes or learns of another instance's (see [`Db::watch_changes`]).
    changes: std::sync::Arc<tokio::sync::watch::Sender<i64>>,
    /// Woken after this process commits a change, for the sequencer.
    pending: std::sync::Arc<tokio::sync::Notify>,
    /// The URL, for PostgreSQL's notification listener. It may hold a password:
    /// never printed (see the `Debug` impl).
    url: std::sync::Arc<str>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A write transaction (see [`Db::write`]).
struct WriteTx {
    tx: Transaction<'static, Any>,
}

impl std::ops::Deref for WriteTx {
    type Target = Transaction<'static, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx {
    async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await?;
        Ok(())
    }
}

const USER_COLUMNS: &str = "id, email, claims, password_hash, updated_at, claims_version";

/// The `LIKE` pattern (with `ESCAPE '\\'`) for emails containing `search`,
/// case-insensitively: `%`, `_` and `\\` in it match only themselves.
fn like_pattern(search: &str) -> String {
    let escaped: String = search
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

impl Db {
    /// Connects (creating a SQLite file, readable by its owner only, if needed) and
    /// brings the schema up to date. A bare path is a SQLite file.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        install_default_drivers();
        let url = if url.contains("://") || url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            create_private_file(&url)?;
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url
        };
        let options = |n: u32| {
            let options = AnyPoolOptions::new().max_connections(n);
            if backend != Backend::Sqlite {
                return options;
            }
            options.after_connect(|conn, _| {
                Box::pin(async move {
                    let busy = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
                    sqlx::query(&busy).execute(&mut *conn).await?;
                    // WAL makes NORMAL safe against corruption; a power cut may lose the
                    // last transactions, never the file.
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
        };
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let writer = options(1).connect(&url).await?;
                // Persistent in the file: readers no longer wait for the writer.
                sqlx::query("PRAGMA journal_mode = WAL")
                    .fetch_optional(&writer)
                    .await?;
                (options(8).connect(&url).await?, writer)
            }
            Backend::Postgres => {
                let pool = options(16).connect(&url).await?;
                (pool.clone(), pool)
            }
        };
        let db = Db {
            pool,
            writer,
            backend,
            changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            pending: std::sync::Arc::new(tokio::sync::Notify::new()),
            url: url.as_str().into(),
        };
        db.migrate().await?;
        db.changes.send_replace(db.last_change_seq().await?);
        Ok(db)
    }

    /// Starts a write transaction that holds the write lock before it reads (see the
    /// module docs).
    async fn write(&self) -> Result<WriteTx, DbError> {
        let tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        Ok(WriteTx { tx })
    }

    /// Serializes transactions that take the same `name` across instances, until
    /// the transaction ends (PostgreSQL; on SQLite the write transaction already does).
    async fn lock_named(&self, tx: &mut WriteTx, name: &str) -> Result<(), DbError> {
        if self.backend == Backend::Postgres {
            // A DO block: `pg_advisory_xact_lock` returns `void`, which the Any driver
            // cannot decode. The name is a constant of ours, never input.
            let sql = format!(
                "DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('tiergate:{name}:' || current_schema())); END $$"
            );
            sqlx::query(&sql).execute(&mut ***tx).await?;
        }
        Ok(())
    }

    /// `FOR UPDATE` where the database has row locks.
    fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        self.lock_named(&mut tx, "migrate").await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS tiergate_schema (version BIGINT PRIMARY KEY)")
            .execute(&mut **tx)
            .await?;
        let done: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tiergate_schema")
            .fetch_one(&mut **tx)
            .await?
            .try_get("n")?;
        let done = usize::try_from(done).unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            sqlx::query(sql).execute(&mut **tx).await?;
            sqlx::query("INSERT INTO tiergate_schema (version) VALUES ($1)")
                .bind(i64::try_from(i.saturating_add(1)).unwrap_or(i64::MAX))
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await
    }

    // --- users -----------------------------------------------------------------

    /// The user with this email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.map(user_row).transpose()
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, DbError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(user_row).transpose()
    }

    /// The response remembered under an idempotency key, if any (a fast path before
    /// any work; [`Db::write_claims`] decides atomically).
    pub async fn idempotent(
        &self,
        client_id: &str,
        key: &str,
    ) -> Result<Option<StoredResponse>, DbError> {
        let row = sqlx::query("SELECT request_hash, status, response FROM idempotency WHERE client_id = $1 AND idem_key = $2")
            .bind(client_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(stored_response).transpose()
    }

    /// Applies `change` to a user's stored claims (creating the user), atomically:
    /// concurrent writes to one user apply one after the other, each to the claims
    /// the previous one left, on one instance or many. Sets the password hash when
    /// given (revoking the user's refresh tokens), writes one audit entry when the
    /// claims changed, bumps the claims version on any change, and — with an
    /// idempotency key — remembers the response (`respond`'s body) in the same
    /// transaction, so a key applies its request once however many connections send it.
    pub async fn write_claims<E>(
        &self,
        w: ClaimsWriteOptions<'_>,
        change: impl FnOnce(&UserRow) -> Result<Map<String, Value>, E>,
        respond: impl FnOnce(&UserRow) -> String,
    ) -> Result<ClaimsWrite<E>, DbError> {
        let mut tx = self.write().await?;
        let now = now_ms();
        if let Some(k) = w.idempotency {
            // Claims the key first: a second transaction with the same key waits here
            // until this one ends, then finds the key taken and replays its response.
            let claimed = sqlx::query("INSERT INTO idempotency (client_id, idem_key, request_hash, status, response, created_at) VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT DO NOTHING")
                .bind(k.client_id)
                .bind(k.key)
                .bind(k.request_hash)
                .bind(now)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if claimed == 0 {
                let row = sqlx::query("SELECT request_hash, status, response FROM idempotency WHERE client_id = $1 AND idem_key = $2")
                    .bind(k.client_id)
                    .bind(k.key)
                    .fetch_one(&mut **tx)
                    .await?;
                let stored = stored_response(row)?;
                tx.commit().await?;
                return Ok(ClaimsWrite::Replayed(stored));
            }
        }
        sqlx::query("INSERT INTO users (id, email, claims, created_at, updated_at, claims_version) VALUES ($1, $2, '{}', $3, $3, 0) ON CONFLICT (email) DO NOTHING")
            .bind(super::secrets::random_id("usr"))
            .bind(w.email)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1{}",
            self.for_update()
        ))
        .bind(w.email)
        .fetch_one(&mut **tx)
        .await?;
        let before = user_row(row)?;
        if let Some(raw) = before.unreadable {
            return Ok(ClaimsWrite::Unreadable(raw));
        }
        let after = match change(&before) {
            Ok(after) => after,
            Err(e) => return Ok(ClaimsWrite::Refused(e)),
        };
        let claims_changed = before.claims != after;
        let changed = changed_names(&before.claims, &after);
        let mut user = UserRow {
            claims: after,
            ..before.clone()
        };
        let mut recorded = false;
        if claims_changed || w.password_hash.is_some() {
            user.updated_at = now;
            user.claims_version = before.claims_version.saturating_add(1);
            if let Some(h) = w.password_hash {
                user.password_hash = Some(h.to_owned());
                // A new password ends every session the old one started.
                sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
                    .bind(&user.id)
                    .execute(&mut **tx)
                    .await?;
            }
            sqlx::query(
                "UPDATE users SET claims = $1, password_hash = $2, updated_at = $3, claims_version = $4 WHERE id = $5",
            )
            .bind(Value::Object(user.claims.clone()).to_string())
            .bind(&user.password_hash)
            .bind(now)
            .bind(user.claims_version)
            .bind(&user.id)
            .execute(&mut **tx)
            .await?;
        }
        if claims_changed {
            sqlx::query("INSERT INTO audit (id, user_id, actor, before_claims, after_claims, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(super::secrets::random_id("aud"))
                .bind(&user.id)
                .bind(w.actor)
                .bind(Value::Object(before.claims).to_string())
                .bind(Value::Object(user.claims.clone()).to_string())
                .bind(now)
                .execute(&mut **tx)
                .await?;
        }
        if let Some(k) = w.idempotency {
            sqlx::query("UPDATE idempotency SET status = 200, response = $1 WHERE client_id = $2 AND idem_key = $3")
                .bind(respond(&user))
                .bind(k.client_id)
                .bind(k.key)
                .execute(&mut **tx)
                .await?;
        }
        if claims_changed || w.password_hash.is_some() {
            let kind = if claims_changed {
                ChangeKind::Claims
            } else {
                ChangeKind::Revocation
            };
            let change = NewChange {
                user_id: &user.id,
                version: user.claims_version,
                kind,
                changed: &changed,
                actor: w.actor,
                at: now,
            };
            self.record_change(&mut tx, change).await?;
            recorded = true;
        }
        tx.commit().await?;
        if recorded {
            self.pending.notify_one();
            let kind = if claims_changed {
                "claims"
            } else {
                "revocation"
            };
            crate::telemetry::increment(crate::telemetry::SERVER_CLAIMS_CHANGES, &[("kind", kind)]);
        }
        Ok(ClaimsWrite::Applied(user))
    }

    /// Creates a user with no claims; `None` when the email is taken.
    pub async fn create_user(&self, email: &str) -> Result<Option<UserRow>, DbError> {
        let now = now_ms();
        let id = super::secrets::random_id("usr");
        let created = sqlx::query("INSERT INTO users (id, email, claims, created_at, updated_at, claims_version) VALUES ($1, $2, '{}', $3, $3, 0) ON CONFLICT (email) DO NOTHING")
            .bind(&id)
            .bind(email)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if created == 0 {
            return Ok(None);
        }
        self.user_by_id(&id).await
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
        let pattern = like_pattern(search);
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM users WHERE email LIKE $1 ESCAPE '\\'")
                .bind(&pattern)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email LIKE $1 ESCAPE '\\' ORDER BY email LIMIT $2 OFFSET $3"
        ))
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let users = rows.into_iter().map(user_row).collect::<Result<_, _>>()?;
        Ok((users, total))
    }

    /// Calls `each` with every user whose email contains `search` (case-insensitive),
    /// by email, streaming the rows (one connection for the scan, one row in memory
    /// at a time): for the dashboard's plan and trial filters and its policy page,
    /// which read each user's claims under the running policy.
    pub async fn for_each_user(
        &self,
        search: &str,
        mut each: impl FnMut(UserRow),
    ) -> Result<(), DbError> {
        use futures_util::TryStreamExt as _;
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email LIKE $1 ESCAPE '\\' ORDER BY email"
        );
        let mut rows = sqlx::query(&sql)
            .bind(like_pattern(search))
            .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            each(user_row(row)?);
        }
        Ok(())
    }

    /// Writes a user's claims column verbatim (tests of what older versions or
    /// hand edits may leave behind).
    #[doc(hidden)]
    pub async fn overwrite_claims_text(&self, user_id: &str, text: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE users SET claims = $1 WHERE id = $2")
            .bind(text)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // --- the claims-change feed ------------------------------------------------------

    /// Records a change inside the writing transaction `tx`, unnumbered: it joins
    /// the feed when the sequencer ([`sequence_changes`](Self::sequence_changes))
    /// numbers it after `tx` commits.
    ///
    /// Why not number it here: a number must never become visible after a larger
    /// one, or a reader that moved past the larger one would skip it for good. A
    /// database sequence hands out numbers in start order, not commit order; a
    /// counter row locked until commit keeps the order but makes every claims write
    /// wait for the one before it to commit — on PostgreSQL that halved the server's
    /// 64-client write throughput (2,452 → 1,174 writes/s, 0.86× → 0.36× its floor),
    /// one fsync at a time. The sequencer numbers whatever has committed, in batches,
    /// one pass at a time across every instance.
    async fn record_change(&self, tx: &mut WriteTx, c: NewChange<'_>) -> Result<(), DbError> {
        sqlx::query("INSERT INTO claims_pending (id, user_id, version, kind, changed, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(super::secrets::random_id("chg"))
            .bind(c.user_id)
            .bind(c.version)
            .bind(c.kind.as_str())
            .bind(Value::from(c.changed.to_vec()).to_string())
            .bind(c.actor)
            .bind(c.at)
            .execute(&mut ***tx)
            .await?;
        // No `NOTIFY` here: PostgreSQL serializes the commits of transactions that
        // notify, which would put every claims write back in one queue. This
        // instance's keeper is woken after the commit instead, and its sequencer's
        // one transaction per batch notifies the other instances.
        Ok(())
    }

    /// On PostgreSQL, a notification delivered when (and only if) `tx` commits, to
    /// every instance's [`keep_feed`](Self::keep_feed). Only the sequencer sends it
    /// (see [`record_change`](Self::record_change)).
    async fn notify_instances(&self, tx: &mut WriteTx) -> Result<(), DbError> {
        if self.backend == Backend::Postgres {
            sqlx::query(&format!(
                "DO $$ BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', current_schema()); END $$"
            ))
            .execute(&mut ***tx)
            .await?;
        }
        Ok(())
    }

    /// Numbers the committed, unnumbered changes (oldest first) after the feed's
    /// last number, in one transaction that only one instance runs at a time; returns
    /// the feed's last number (for [`keep_feed`](Self::keep_feed) to tell the readers).
    /// Numbers become visible in the order they are given.
    pub async fn sequence_changes(&self) -> Result<i64, DbError> {
        const BATCH: i64 = 1000;
        let mut tx = self.write().await?;
        self.lock_named(&mut tx, "feed").await?;
        let pending = sqlx::query("SELECT id, user_id, version, kind, changed, actor, at FROM claims_pending ORDER BY at, id LIMIT $1")
            .bind(BATCH)
            .fetch_all(&mut **tx)
            .await?;
        let mut last: i64 = sqlx::query("SELECT last_seq FROM claims_feed WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?
            .try_get("last_seq")?;
        if pending.is_empty() {
            tx.commit().await?;
            return Ok(last);
        }
        for row in &pending {
            last = last.saturating_add(1);
            let id: String = row.try_get("id")?;
            sqlx::query("INSERT INTO claims_changes (seq, user_id, version, kind, changed, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(last)
                .bind(row.try_get::<String, _>("user_id")?)
                .bind(row.try_get::<i64, _>("version")?)
                .bind(row.try_get::<String, _>("kind")?)
                .bind(row.try_get::<String, _>("changed")?)
                .bind(row.try_get::<String, _>("actor")?)
                .bind(row.try_get::<i64, _>("at")?)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM claims_pending WHERE id = $1")
                .bind(&id)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("UPDATE claims_feed SET last_seq = $1 WHERE id = 1")
            .bind(last)
            .execute(&mut **tx)
            .await?;
        self.notify_instances(&mut tx).await?;
        tx.commit().await?;
        if i64::try_from(pending.len()).unwrap_or(i64::MAX) >= BATCH {
            // More may be waiting: the keeper runs again at once.
            self.pending.notify_one();
        }
        Ok(last)
    }

    /// The value of a server setting, set to `make()` first if there is none (every
    /// instance ends up with the same value, whichever set it).
    pub async fn setting_or_insert(
        &self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, DbError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(make())
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?
            .try_get("value")?)
    }

    /// Creates a client with this id unless it exists.
    pub async fn ensure_client(
        &self,
        id: &str,
        name: &str,
        secret_hash: &str,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO clients (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(name)
            .bind(secret_hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Feed entries after `after`, oldest first, at most `limit`.
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<ChangeRow>, DbError> {
        let rows = sqlx::query("SELECT seq, user_id, version, kind, changed, actor, at FROM claims_changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                let changed: String = r.try_get("changed")?;
                let kind: String = r.try_get("kind")?;
                Ok(ChangeRow {
                    seq: r.try_get("seq")?,
                    user_id: r.try_get("user_id")?,
                    version: r.try_get("version")?,
                    kind: if kind == "claims" {
                        ChangeKind::Claims
                    } else {
                        ChangeKind::Revocation
                    },
                    // Written by `record_change` as a JSON list of strings; anything
                    // else (a hand edit) names no claims rather than failing the feed.
                    changed: serde_json::from_str(&changed).unwrap_or_default(),
                    actor: r.try_get("actor")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// The number of the latest feed entry ever written (0 for none), whether or
    /// not it is still kept.
    pub async fn last_change_seq(&self) -> Result<i64, DbError> {
        Ok(sqlx::query("SELECT last_seq FROM claims_feed WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("last_seq"))
            .transpose()?
            .unwrap_or(0))
    }

    /// Drops feed entries written before `before_ms` (numbered or not: a change
    /// nobody numbered while no server ran is as old); returns how many.
    pub async fn prune_changes(&self, before_ms: i64) -> Result<u64, DbError> {
        let mut dropped = 0;
        for table in ["claims_changes", "claims_pending"] {
            let n = sqlx::query(&format!("DELETE FROM {table} WHERE at < $1"))
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
            dropped = n.saturating_add(dropped);
        }
        Ok(dropped)
    }

    /// The latest feed entry this process knows of, as a channel that changes when
    /// a newer one is numbered (by this process's [`keep_feed`](Self::keep_feed),
    /// at once; another instance's wakes it through PostgreSQL's notification).
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<i64> {
        self.changes.subscribe()
    }

    /// Keeps the feed until `self`'s last clone is dropped: numbers changes as they
    /// commit ([`sequence_changes`](Self::sequence_changes)) and tells this
    /// process's feed readers. Woken by this process's commits, by PostgreSQL's
    /// notification of any instance's (a change or a numbering), and every `poll`
    /// in case a notification was missed (a listener reconnecting) or another
    /// process writes the same SQLite file.
    pub async fn keep_feed(self, poll: Duration) {
        let weak = std::sync::Arc::downgrade(&self.changes);
        let mut listener = match self.backend {
            Backend::Postgres => self.listen().await,
            Backend::Sqlite => None,
        };
        // The task's own handle must not keep the channel alive, or it would never
        // see the server go.
        let db = Db {
            changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            ..self
        };
        let mut failing = false;
        loop {
            let started = std::time::Instant::now();
            let numbered = db.sequence_changes().await;
            // Told to this process's feed readers, while the server lives.
            let Some(changes) = weak.upgrade() else {
                return;
            };
            match numbered {
                Ok(last) => {
                    tracing::trace!(target: "tiergate::server", last, took_ms = started.elapsed().as_millis() as u64, "claims feed: numbered");
                    changes.send_if_modified(|latest| raise(latest, last));
                    if failing {
                        tracing::info!(target: "tiergate::server", "claims feed: numbering changes again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(target: "tiergate::server", error = %e, "claims feed: numbering changes failed; retrying");
                    }
                    failing = true;
                }
            }
            drop(changes);
            let notified = async {
                match &mut listener {
                    Some(l) => {
                        if let Err(e) = l.recv().await {
                            tracing::warn!(target: "tiergate::server", error = %e, "claims feed: listening for other instances' changes failed; polling meanwhile");
                            tokio::time::sleep(poll).await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = db.pending.notified() => {}
                () = notified => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    async fn listen(&self) -> Option<sqlx::postgres::PgListener> {
        let listen = async {
            let mut l = sqlx::postgres::PgListener::connect(&self.url).await?;
            l.listen(NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match listen.await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(target: "tiergate::server", error = %e, "claims feed: cannot listen for other instances' changes; polling instead");
                None
            }
        }
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

    /// Replaces a client's secret hash if it is still `old` (a re-hash on first use;
    /// a concurrent re-hash of the same secret is as good).
    pub async fn rehash_client_secret(
        &self,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2 AND secret_hash = $3")
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores an admin (or replaces their password), in one statement.
    pub async fn upsert_admin(&self, email: &str, password_hash: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO admins (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
        )
        .bind(super::secrets::random_id("adm"))
        .bind(email)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
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
        let mut tx = self.write().await?;
        self.lock_named(&mut tx, "keys").await?;
        insert_key(&mut tx, key).await?;
        tx.commit().await
    }

    /// Adds `key` only if no key is active; returns whether it did. Several instances
    /// starting on an empty database create one key between them.
    pub async fn ensure_active_key(&self, key: &KeyRow) -> Result<bool, DbError> {
        let mut tx = self.write().await?;
        self.lock_named(&mut tx, "keys").await?;
        let active: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM signing_keys WHERE retired_at IS NULL")
                .fetch_one(&mut **tx)
                .await?
                .try_get("n")?;
        if active > 0 {
            return Ok(false);
        }
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(true)
    }

    // --- refresh tokens ------------------------------------------------------------

    /// Stores a refresh token's hash, in a family (one per sign-in).
    pub async fn insert_refresh(
        &self,
        token_hash: &str,
        user_id: &str,
        family: &str,
        expires_at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, expires_at, family) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at)
        .bind(family)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Uses a refresh token and stores its successor (`new_hash`, same family), in one
    /// transaction: of concurrent uses of one token exactly one wins, decided by one
    /// conditional update. A token reused within `race_grace` of its first use is
    /// taken as a race between two legitimate refreshes (a client retrying, two
    /// tabs): refused, without revoking the winner's new token. See [`RefreshUse`].
    pub async fn rotate_refresh(
        &self,
        token_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
        race_grace: Duration,
    ) -> Result<RefreshUse, DbError> {
        let grace_ms = i64::try_from(race_grace.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        let mut tx = self.write().await?;
        let won = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        let row = sqlx::query(
            "SELECT user_id, used_at, family FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshUse::Invalid);
        };
        let user_id: String = row.try_get("user_id")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        // Rows from before families existed are a family of their own.
        let family: String = row
            .try_get::<Option<String>, _>("family")?
            .unwrap_or_else(|| token_hash.to_owned());
        if won == 1 {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, user_id, expires_at, family) VALUES ($1, $2, $3, $4)",
            )
            .bind(new_hash)
            .bind(&user_id)
            .bind(new_expires_at)
            .bind(&family)
            .execute(&mut **tx)
            .await?;
            tx.commit().await?;
            return Ok(RefreshUse::Rotated { user_id });
        }
        let outcome = match used_at {
            None => RefreshUse::Invalid, // unused, so it lost on expiry
            Some(at) if now.saturating_sub(at) < grace_ms => RefreshUse::Raced,
            Some(_) => {
                sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $1 WHERE (family = $2 OR token_hash = $2) AND used_at IS NULL",
                )
                .bind(now)
                .bind(&family)
                .execute(&mut **tx)
                .await?;
                // The access tokens that family minted are suspect too: a new claims
                // version makes gated apps that follow the feed refuse them.
                let version: Option<i64> = sqlx::query(
                    "UPDATE users SET claims_version = claims_version + 1 WHERE id = $1 RETURNING claims_version",
                )
                .bind(&user_id)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get("claims_version"))
                .transpose()?;
                if let Some(version) = version {
                    let change = NewChange {
                        user_id: &user_id,
                        version,
                        kind: ChangeKind::Revocation,
                        changed: &[],
                        actor: "system:refresh-token-reuse",
                        at: now,
                    };
                    self.record_change(&mut tx, change).await?;
                    tx.commit().await?;
                    self.pending.notify_one();
                    crate::telemetry::increment(
                        crate::telemetry::SERVER_CLAIMS_CHANGES,
                        &[("kind", "revocation")],
                    );
                    return Ok(RefreshUse::Reused);
                }
                RefreshUse::Reused
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

/// The PostgreSQL channel a committed change notifies.
const NOTIFY_CHANNEL: &str = "tiergate_claims_changes";

/// A change about to be recorded.
struct NewChange<'a> {
    user_id: &'a str,
    version: i64,
    kind: ChangeKind,
    changed: &'a [String],
    actor: &'a str,
    at: i64,
}

/// Raises `latest` to `seq`; whether it rose (for `send_if_modified`).
fn raise(latest: &mut i64, seq: i64) -> bool {
    if seq > *latest {
        *latest = seq;
        true
    } else {
        false
    }
}

/// The names of the claims that differ between `before` and `after`, sorted.
fn changed_names(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    let mut names: Vec<String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(after.keys().filter(|k| !before.contains_key(*k)).cloned())
        .collect();
    names.sort();
    names
}

async fn insert_key(tx: &mut WriteTx, key: &KeyRow) -> Result<(), DbError> {
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
        .bind(key.created_at)
        .execute(&mut ***tx)
        .await?;
    sqlx::query("INSERT INTO signing_keys (kid, alg, private_pkcs8, public_x, created_at) VALUES ($1, 'EdDSA', $2, $3, $4)")
        .bind(&key.kid)
        .bind(&key.private_pkcs8)
        .bind(&key.public_x)
        .bind(key.created_at)
        .execute(&mut ***tx)
        .await?;
    Ok(())
}

/// Creates the SQLite file with mode 0600 if it does not exist yet: it holds the
/// private signing keys. (SQLite gives its `-wal` and `-shm` files the same mode.)
fn create_private_file(url: &str) -> Result<(), DbError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return Ok(()); // in memory
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(DbError(sqlx::Error::Io(e))),
    }
}

fn stored_response(r: sqlx::any::AnyRow) -> Result<StoredResponse, DbError> {
    let status: i64 = r.try_get("status")?;
    Ok(StoredResponse {
        request_hash: r.try_get("request_hash")?,
        status: u16::try_from(status).unwrap_or(500),
        body: r.try_get("response")?,
    })
}

fn user_row(r: sqlx::any::AnyRow) -> Result<UserRow, DbError> {
    let text: String = r.try_get("claims")?;
    let (claims, unreadable) = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => (m, None),
        _ => (Map::new(), Some(text)),
    };
    Ok(UserRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        claims,
        unreadable,
        password_hash: r.try_get("password_hash")?,
        updated_at: r.try_get("updated_at")?,
        claims_version: r.try_get("claims_version")?,
    })
}

/// Audit snapshots: JSON, or the raw text as a string when it is not.
fn json_text(s: String) -> Value {
    serde_json::from_str(&s).unwrap_or(Value::String(s))
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
