-- Liveness challenges given to kiosks: each answered at most once, before it expires. The nonce
-- is stored as its SHA-256 (hex), like keys and session tokens.
CREATE TABLE liveness_challenges (
    nonce_hash   CHAR(64) NOT NULL PRIMARY KEY,
    -- `turn_left` or `turn_right`
    instruction  VARCHAR(16) NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    expires_at   DATETIME(6) NOT NULL,
    used_at      DATETIME(6) NULL,
    INDEX liveness_challenges_expires (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- How a check-in's liveness was established: `none` (one photo) or `challenge` (a sequence).
ALTER TABLE attendance ADD COLUMN liveness VARCHAR(16) NOT NULL DEFAULT 'none';
