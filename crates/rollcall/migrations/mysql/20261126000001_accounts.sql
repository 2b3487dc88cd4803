-- People who log in (admin page), their sessions, and the keys machines present.
-- Secrets are never stored: passwords as Argon2id PHC strings, session cookies and keys as the
-- SHA-256 (hex) of their value. Usernames are stored in lower case (`_ci` would fold them anyway;
-- a `_bin` collation would make sqlx read the text columns as bytes).
CREATE TABLE accounts (
    id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(64) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    -- `admin` or `viewer`
    role          VARCHAR(16) NOT NULL,
    created_at    DATETIME(6) NOT NULL,
    CONSTRAINT accounts_username UNIQUE (username)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE sessions (
    token_hash  CHAR(64) NOT NULL PRIMARY KEY,
    account_id  BIGINT NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    expires_at  DATETIME(6) NOT NULL,
    CONSTRAINT sessions_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE api_keys (
    id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name          VARCHAR(100) NOT NULL,
    -- `verify`, `register` or `admin`
    scope         VARCHAR(16) NOT NULL,
    key_hash      CHAR(64) NOT NULL,
    created_at    DATETIME(6) NOT NULL,
    last_used_at  DATETIME(6) NULL,
    revoked_at    DATETIME(6) NULL,
    CONSTRAINT api_keys_hash UNIQUE (key_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
