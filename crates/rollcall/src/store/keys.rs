//! Machine keys: only the SHA-256 of a key is stored; a revoked key stays listed.

use super::{DbTime, InsertedId, Store, StoreError};
use crate::auth::Scope;
use crate::domain::KeyName;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// A single photo sent with this key is recognised but checks nobody in: its check-ins
    /// must answer a liveness challenge.
    pub require_liveness: bool,
}

type KeyRow = (
    i64,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    bool,
);

const KEY_COLUMNS: &str =
    "SELECT id, name, scope, created_at, last_used_at, revoked_at, require_liveness FROM api_keys";

fn record(
    (id, name, scope, created_at, last_used_at, revoked_at, require_liveness): KeyRow,
) -> Result<KeyRecord, StoreError> {
    let scope = Scope::parse(&scope).ok_or_else(|| {
        StoreError::Database(sqlx::Error::Decode(
            format!("unknown key scope `{scope}`").into(),
        ))
    })?;
    Ok(KeyRecord {
        id,
        name,
        scope,
        created_at,
        last_used_at,
        revoked_at,
        require_liveness,
    })
}

impl Store {
    pub async fn create_key(
        &self,
        name: &KeyName,
        scope: Scope,
        require_liveness: bool,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<KeyRecord, StoreError> {
        let id = with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO api_keys (name, scope, require_liveness, key_hash, created_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
                .bind(name.as_str())
                .bind(scope.as_str())
                .bind(require_liveness)
                .bind(key_hash)
                .bind(DbTime(now))
                .execute(pool)
                .await?
                .inserted_id()
        });
        Ok(KeyRecord {
            id,
            name: name.as_str().to_owned(),
            scope,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            require_liveness,
        })
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("{KEY_COLUMNS} ORDER BY id");
        let rows: Vec<KeyRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(record).collect()
    }

    /// The key whose SHA-256 is `key_hash`, revoked or not.
    pub async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("{KEY_COLUMNS} WHERE key_hash = ?");
        let row: Option<KeyRow> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(key_hash).fetch_optional(pool).await?
        });
        row.map(record).transpose()
    }

    pub async fn touch_key(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
                .bind(DbTime(now))
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Revoke a key (a second revocation keeps the first instant). `None` when there is no such
    /// key.
    pub async fn revoke_key(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(DbTime(now))
                .bind(id)
                .execute(pool)
                .await?;
        });
        let sql = format!("{KEY_COLUMNS} WHERE id = ?");
        let row: Option<KeyRow> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(record).transpose()
    }
}
