-- Each reference face says when it was added and where it came from (`upload`, `webcam`,
-- `kiosk`, `cli`), the users row's own reference included; and settings an admin changes while
-- the server runs. The time columns may be NULL (rows written by an older binary): readers
-- fall back to the person's `created_at`.
ALTER TABLE faces ADD COLUMN created_at TEXT;
ALTER TABLE faces ADD COLUMN source TEXT NOT NULL DEFAULT 'upload';
UPDATE faces SET created_at = (SELECT u.created_at FROM users u WHERE u.id = faces.user_id);

ALTER TABLE users ADD COLUMN face_added_at TEXT;
ALTER TABLE users ADD COLUMN face_source TEXT NOT NULL DEFAULT 'upload';
UPDATE users SET face_added_at = created_at;

-- One row per setting changed from its default (`GET /settings`, `PUT /settings`).
CREATE TABLE settings (
    name   TEXT NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
);
