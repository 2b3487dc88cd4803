-- The original `users` table (id, first_name, last_name, embedding, image_path) plus the model
-- that made the embedding and when the person was registered.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    -- little-endian f32, L2-normalised
    embedding   BLOB NOT NULL,
    -- relative to the data directory: img_refs/<uuid>.<ext>
    image_path  TEXT NOT NULL,
    model       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- Extra reference faces of a person, beyond the one in `users`.
CREATE TABLE faces (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    embedding   BLOB NOT NULL,
    model       TEXT NOT NULL,
    image_path  TEXT NOT NULL
);
CREATE INDEX faces_user ON faces (user_id);

-- One row per check-in. The names are copied so that the log stays readable after the person
-- is deleted without their history.
CREATE TABLE attendance (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    at          TEXT NOT NULL,
    similarity  REAL NOT NULL,
    kiosk       TEXT,
    model       TEXT NOT NULL
);
CREATE INDEX attendance_user_at ON attendance (user_id, at);
CREATE INDEX attendance_at ON attendance (at);
