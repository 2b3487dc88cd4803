-- Liveness challenges given to kiosks: each answered at most once, before it expires. The nonce
-- is stored as its SHA-256 (hex), like keys and session tokens.
CREATE TABLE liveness_challenges (
    nonce_hash   TEXT NOT NULL PRIMARY KEY,
    -- `turn_left` or `turn_right`
    instruction  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT
);
CREATE INDEX liveness_challenges_expires ON liveness_challenges (expires_at);

-- How a check-in's liveness was established: `none` (one photo) or `challenge` (a sequence).
ALTER TABLE attendance ADD COLUMN liveness TEXT NOT NULL DEFAULT 'none';
