-- The gallery's change log: every change to a person's reference faces (register, add-face,
-- delete, reindex, face deletion) appends one row in the transaction of the change, and every
-- server re-reads the people named after its cursor (docs/architecture.md, "Several servers").
--
-- Ids come from the one row of `gallery_sequence`, bumped in that same transaction: its row lock
-- is held until commit, so a change gets id N+1 only after the change with id N has committed.
-- Ids therefore commit in order and without gaps (a rollback takes its bump back), and a reader
-- that has seen N never meets a later commit with an id at or below N — which AUTO_INCREMENT,
-- handed out at insert time, does not promise.
CREATE TABLE gallery_sequence (
    id    TINYINT NOT NULL PRIMARY KEY,
    last_id  BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT INTO gallery_sequence (id, last_id) VALUES (1, 0);

-- No name and no embedding: a deleted person leaves an id and a word here, pruned within hours.
CREATE TABLE gallery_changes (
    id       BIGINT NOT NULL PRIMARY KEY,
    user_id  BIGINT NOT NULL,
    -- `register`, `add_face`, `delete_user`, `reindex`, `delete_face`
    kind     VARCHAR(16) NOT NULL,
    at       DATETIME(6) NOT NULL,
    INDEX gallery_changes_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
