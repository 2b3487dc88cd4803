-- Each reference face says when it was added and where it came from (`upload`, `webcam`,
-- `kiosk`, `cli`), the users row's own reference included; and settings an admin changes while
-- the server runs. The time columns may be NULL (rows written by an older binary): readers
-- fall back to the person's `created_at`.
ALTER TABLE faces
    ADD COLUMN created_at DATETIME(6) NULL,
    ADD COLUMN source VARCHAR(16) NOT NULL DEFAULT 'upload';
UPDATE faces f JOIN users u ON u.id = f.user_id SET f.created_at = u.created_at;

ALTER TABLE users
    ADD COLUMN face_added_at DATETIME(6) NULL,
    ADD COLUMN face_source VARCHAR(16) NOT NULL DEFAULT 'upload';
UPDATE users SET face_added_at = created_at;

-- One row per setting changed from its default (`GET /settings`, `PUT /settings`).
CREATE TABLE settings (
    name   VARCHAR(64) NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
