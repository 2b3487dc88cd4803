-- Who did what, when and from where: one row per register, add-face, delete, export, key or
-- login event (the vocabulary is `crate::audit::Action`). Never photos, embeddings, passwords or
-- keys, and never a registered person's name: a deleted person must leave no trace, so people are
-- named by id (`user:12`).
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    -- `Caller::label()`: `account:alice`, `key:front door`, `cli:root`, `anonymous`
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    -- `user:12`, `key:3`, `account:alice`, `attendance`; null when the action has none
    target   TEXT,
    -- the client's IP address; null for the command line
    address  TEXT,
    detail   TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
