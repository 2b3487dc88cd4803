//! Who is asking, and the accounts and keys behind it: logging in (rate-limited, the same answer
//! and about the same time for an unknown name as for a wrong password), sessions, the one-time
//! setup of the first admin, accounts for the CLI, and machine keys. Needs only the database,
//! so the CLI's `admin` and `keys` commands run without the face models.

use crate::auth::limiter::LoginLimiter;
use crate::auth::{secret, Caller, Role, Scope};
use crate::domain::{InvalidInput, KeyName, Password, Username, MAX_PASSWORD_CHARS};
use crate::store::{AccountRecord, KeyRecord, NewAccount, Store, StoreError};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts when the settings do not say.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A key's `last_used_at` is written at most this often (every request would be a write).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Unknown name or wrong password: one message for both.
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("too many failed logins; try again in {} s", .retry_after.as_secs().max(1))]
    TooManyAttempts { retry_after: Duration },
    #[error("the setup link is not valid (it works once, and only while no account exists)")]
    SetupClosed,
    #[error("an account named `{0}` already exists")]
    UsernameTaken(String),
    #[error("no account named `{0}`")]
    NoSuchAccount(String),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session just opened: the cookie's value (given to the browser, never stored) and how long
/// it lasts.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub ttl: Duration,
}

/// What a bearer key resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    Valid(Caller),
    /// Malformed, unknown or revoked.
    Refused,
}

pub struct Accounts {
    store: Store,
    limiter: LoginLimiter,
    session_ttl: Duration,
    /// The setup token while no account exists and the setup link has not been used.
    setup_token: Mutex<Option<String>>,
    /// Serialises the first-run setup (one admin, even for two simultaneous requests).
    setup_lock: tokio::sync::Mutex<()>,
    touched: Mutex<HashMap<i64, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Argon2 takes tens of milliseconds of CPU: off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Accounts {
    pub fn new(store: Store, session_ttl: Duration) -> Accounts {
        Accounts {
            store,
            limiter: LoginLimiter::default(),
            session_ttl,
            setup_token: Mutex::new(None),
            setup_lock: tokio::sync::Mutex::new(()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// On a server's start: when no account exists, a fresh setup token (held in memory only,
    /// so a restart makes a new one); `None` otherwise.
    pub async fn open_setup(&self) -> Result<Option<String>, AccessError> {
        if self.store.count_accounts().await? > 0 {
            return Ok(None);
        }
        let token = secret::random_token();
        *lock(&self.setup_token) = Some(token.clone());
        Ok(Some(token))
    }

    /// The first admin, from the setup link's token; logs them in.
    pub async fn setup(
        &self,
        token: &str,
        username: &Username,
        password: &Password,
    ) -> Result<(AccountRecord, Session), AccessError> {
        let _one_at_a_time = self.setup_lock.lock().await;
        let valid = lock(&self.setup_token)
            .as_deref()
            .is_some_and(|t| secret::sha256_hex(t) == secret::sha256_hex(token));
        if !valid {
            return Err(AccessError::SetupClosed);
        }
        let hash = hash(password).await;
        let created = self
            .store
            .create_account(username, &hash, Role::Admin, Utc::now(), true)
            .await?;
        let account = match created {
            NewAccount::Created(a) => a,
            // `rollcall admin add` got there first: the link is spent either way.
            NewAccount::NotFirst | NewAccount::Taken => {
                *lock(&self.setup_token) = None;
                return Err(AccessError::SetupClosed);
            }
        };
        *lock(&self.setup_token) = None;
        tracing::info!("setup: created the first admin account `{username}`");
        let session = self.open_session(account.id).await?;
        Ok((account, session))
    }

    /// Check a username and password (as typed) from `address`; a session when they are right.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        address: &str,
    ) -> Result<(AccountRecord, Session), AccessError> {
        let name_key = format!("account:{}", username.trim().to_ascii_lowercase());
        let address_key = format!("address:{address}");
        let subjects = [name_key.as_str(), address_key.as_str()];
        if let Some(retry_after) = self.limiter.blocked(&subjects, Instant::now()) {
            return Err(AccessError::TooManyAttempts { retry_after });
        }
        let found = match Username::parse(username) {
            Ok(name) => self.store.account_login(&name).await?,
            Err(_) => None,
        };
        let (account, phc) = match found {
            Some(f) => (Some(f.account), f.password_hash),
            None => (None, secret::dummy_hash().to_owned()),
        };
        let typed = password.to_owned();
        let right = typed.chars().count() <= MAX_PASSWORD_CHARS
            && blocking(move || secret::verify_password(&typed, &phc)).await;
        match account {
            Some(account) if right => {
                self.limiter.succeeded(&name_key);
                let session = self.open_session(account.id).await?;
                Ok((account, session))
            }
            _ => {
                self.limiter.failed(&subjects, Instant::now());
                Err(AccessError::WrongCredentials)
            }
        }
    }

    async fn open_session(&self, account_id: i64) -> Result<Session, AccessError> {
        let now = Utc::now();
        // Expired rows are refused anyway; clearing them here keeps the table small.
        self.store.delete_expired_sessions(now).await?;
        let token = secret::random_token();
        let ttl = chrono::Duration::from_std(self.session_ttl).unwrap_or(chrono::Duration::MAX);
        self.store
            .create_session(
                &secret::sha256_hex(&token),
                account_id,
                now,
                now.checked_add_signed(ttl)
                    .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC),
            )
            .await?;
        Ok(Session {
            token,
            ttl: self.session_ttl,
        })
    }

    /// End the session whose cookie holds `token` (nothing happens for an unknown one).
    pub async fn logout(&self, token: &str) -> Result<(), AccessError> {
        if secret::looks_like_token(token) {
            self.store
                .delete_session(&secret::sha256_hex(token))
                .await?;
        }
        Ok(())
    }

    /// The account of a session cookie, if it is current.
    pub async fn session_caller(&self, token: &str) -> Result<Option<Caller>, AccessError> {
        if !secret::looks_like_token(token) {
            return Ok(None);
        }
        let account = self
            .store
            .session_account(&secret::sha256_hex(token), Utc::now())
            .await?;
        Ok(account.map(|a| Caller::Account {
            id: a.id,
            username: a.username,
            role: a.role,
        }))
    }

    /// The caller a bearer key stands for; its `last_used_at` is kept to the minute.
    pub async fn key_caller(&self, key: &str) -> Result<KeyLookup, AccessError> {
        if !secret::looks_like_key(key) {
            return Ok(KeyLookup::Refused);
        }
        let Some(record) = self.store.key_by_hash(&secret::sha256_hex(key)).await? else {
            return Ok(KeyLookup::Refused);
        };
        if record.revoked_at.is_some() {
            return Ok(KeyLookup::Refused);
        }
        let now = Instant::now();
        let due = {
            let mut touched = lock(&self.touched);
            let due = touched
                .get(&record.id)
                .is_none_or(|t| now.duration_since(*t) >= TOUCH_EVERY);
            if due {
                touched.insert(record.id, now);
            }
            due
        };
        if due {
            self.store.touch_key(record.id, Utc::now()).await?;
        }
        Ok(KeyLookup::Valid(Caller::Key {
            id: record.id,
            name: record.name,
            scope: record.scope,
            require_liveness: record.require_liveness,
        }))
    }

    pub async fn add_account(
        &self,
        username: &Username,
        password: &Password,
        role: Role,
    ) -> Result<AccountRecord, AccessError> {
        let hash = hash(password).await;
        match self
            .store
            .create_account(username, &hash, role, Utc::now(), false)
            .await?
        {
            NewAccount::Created(a) => {
                // The setup link is for a server with no account; there is one now.
                *lock(&self.setup_token) = None;
                Ok(a)
            }
            NewAccount::Taken | NewAccount::NotFirst => {
                Err(AccessError::UsernameTaken(username.to_string()))
            }
        }
    }

    /// Set a new password and end every session of the account.
    pub async fn reset_password(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<(), AccessError> {
        let hash = hash(password).await;
        if self.store.set_password(username, &hash).await? {
            Ok(())
        } else {
            Err(AccessError::NoSuchAccount(username.to_string()))
        }
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountRecord>, AccessError> {
        Ok(self.store.list_accounts().await?)
    }

    /// A new key: its record and the key itself, which exists nowhere else afterwards.
    pub async fn create_key(
        &self,
        name: &KeyName,
        scope: Scope,
        require_liveness: bool,
    ) -> Result<(KeyRecord, String), AccessError> {
        let key = secret::new_key();
        let record = self
            .store
            .create_key(
                name,
                scope,
                require_liveness,
                &secret::sha256_hex(&key),
                Utc::now(),
            )
            .await?;
        Ok((record, key))
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, AccessError> {
        Ok(self.store.list_keys().await?)
    }

    /// `None` when there is no such key.
    pub async fn revoke_key(&self, id: i64) -> Result<Option<KeyRecord>, AccessError> {
        Ok(self.store.revoke_key(id, Utc::now()).await?)
    }
}

async fn hash(password: &Password) -> String {
    let password = password.clone();
    blocking(move || secret::hash_password(&password)).await
}
