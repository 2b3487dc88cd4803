-- The gallery's change log: every change to a person's reference faces (register, add-face,
-- delete, reindex, face deletion) appends one row in the transaction of the change, and every
-- server re-reads the people named after its cursor (docs/architecture.md, "Several servers").
-- Ids come from the one row of `gallery_sequence`, bumped in that same transaction, as on MySQL
-- (where it matters: see the MySQL migration); SQLite's single writer commits them in order.
CREATE TABLE gallery_sequence (
    id    INTEGER NOT NULL PRIMARY KEY,
    last_id  INTEGER NOT NULL
);
INSERT INTO gallery_sequence (id, last_id) VALUES (1, 0);

-- No name and no embedding: a deleted person leaves an id and a word here, pruned within hours.
CREATE TABLE gallery_changes (
    id       INTEGER NOT NULL PRIMARY KEY,
    user_id  INTEGER NOT NULL,
    -- `register`, `add_face`, `delete_user`, `reindex`, `delete_face`
    kind     TEXT NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX gallery_changes_at ON gallery_changes (at);
