//! Accounts (people who log in) and their sessions. A session row holds the SHA-256 of the
//! cookie's value, never the value.

use super::{DbTime, InsertedId, Store, StoreError};
use crate::auth::Role;
use crate::domain::Username;
use chrono::{DateTime, Utc};

/// An account as listed (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// What checking a password needs.
#[derive(Debug, Clone)]
pub struct AccountLogin {
    pub account: AccountRecord,
    pub password_hash: String,
}

/// What creating an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewAccount {
    Created(AccountRecord),
    /// Another account has this name.
    Taken,
    /// `only_if_none` was asked and an account exists.
    NotFirst,
}

type AccountRow = (i64, String, String, DateTime<Utc>);

pub(super) fn role_of(raw: &str) -> Result<Role, StoreError> {
    Role::parse(raw).ok_or_else(|| {
        StoreError::Database(sqlx::Error::Decode(
            format!("unknown account role `{raw}`").into(),
        ))
    })
}

fn record((id, username, role, created_at): AccountRow) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id,
        username,
        role: role_of(&role)?,
        created_at,
    })
}

impl Store {
    pub async fn count_accounts(&self) -> Result<i64, StoreError> {
        let n: i64 = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Create an account. With `only_if_none`, only while no account exists (the first-run
    /// setup), decided inside the transaction that inserts.
    pub async fn create_account(
        &self,
        username: &Username,
        password_hash: &str,
        role: Role,
        now: DateTime<Utc>,
        only_if_none: bool,
    ) -> Result<NewAccount, StoreError> {
        let inserted = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
                .fetch_one(&mut *tx)
                .await?;
            if only_if_none && existing > 0 {
                return Ok(NewAccount::NotFirst);
            }
            let result = sqlx::query(
                "INSERT INTO accounts (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(username.as_str())
            .bind(password_hash)
            .bind(role.as_str())
            .bind(DbTime(now))
            .execute(&mut *tx)
            .await;
            match result {
                Ok(done) => {
                    tx.commit().await?;
                    Some(done.inserted_id())
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => None,
                Err(e) => return Err(e.into()),
            }
        });
        Ok(match inserted {
            Some(id) => NewAccount::Created(AccountRecord {
                id,
                username: username.as_str().to_owned(),
                role,
                created_at: now,
            }),
            None => NewAccount::Taken,
        })
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let rows: Vec<AccountRow> = with_pool!(self, pool => {
            sqlx::query_as("SELECT id, username, role, created_at FROM accounts ORDER BY username")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(record).collect()
    }

    /// The account named `username`, with its password hash.
    pub async fn account_login(
        &self,
        username: &Username,
    ) -> Result<Option<AccountLogin>, StoreError> {
        let row: Option<(i64, String, String, DateTime<Utc>, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, username, role, created_at, password_hash FROM accounts WHERE username = ?",
            )
            .bind(username.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(|(id, username, role, created_at, password_hash)| {
            Ok(AccountLogin {
                account: record((id, username, role, created_at))?,
                password_hash,
            })
        })
        .transpose()
    }

    /// Replace an account's password and end all its sessions, together. `false` when there is
    /// no such account.
    pub async fn set_password(
        &self,
        username: &Username,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        Ok(with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE username = ?")
                .bind(username.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(id) = id {
                sqlx::query("UPDATE accounts SET password_hash = ? WHERE id = ?")
                    .bind(password_hash)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM sessions WHERE account_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            id.is_some()
        }))
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        account_id: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            )
            .bind(token_hash)
            .bind(account_id)
            .bind(DbTime(now))
            .bind(DbTime(expires_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The account of an unexpired session.
    pub async fn session_account(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<AccountRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT a.id, a.username, a.role, a.created_at FROM sessions s \
                 JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ? AND s.expires_at > ?",
            )
            .bind(token_hash)
            .bind(DbTime(now))
            .fetch_optional(pool)
            .await?
        });
        row.map(record).transpose()
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
                .bind(token_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Forget sessions that have expired (they are refused anyway; this keeps the table small).
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
                .bind(DbTime(now))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
