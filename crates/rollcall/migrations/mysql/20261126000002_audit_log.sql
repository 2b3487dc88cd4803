-- Who did what, when and from where: one row per register, add-face, delete, export, key or
-- login event (the vocabulary is `crate::audit::Action`). Never photos, embeddings, passwords or
-- keys, and never a registered person's name: a deleted person must leave no trace, so people are
-- named by id (`user:12`).
CREATE TABLE audit_log (
    id       BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at       DATETIME(6) NOT NULL,
    -- `Caller::label()`: `account:alice`, `key:front door`, `cli:root`, `anonymous`
    actor    VARCHAR(255) NOT NULL,
    action   VARCHAR(32) NOT NULL,
    -- `user:12`, `key:3`, `account:alice`, `attendance`; null when the action has none
    target   VARCHAR(255) NULL,
    -- the client's IP address; null for the command line
    address  VARCHAR(64) NULL,
    detail   VARCHAR(255) NULL,
    INDEX audit_log_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
