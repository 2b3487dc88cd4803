-- The original `users` table (id, first_name, last_name, embedding, image_path) plus the model
-- that made the embedding and when the person was registered. utf8mb4: names may hold emoji.
CREATE TABLE users (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    first_name  VARCHAR(255) NOT NULL,
    last_name   VARCHAR(255) NOT NULL,
    -- little-endian f32, L2-normalised
    embedding   BLOB NOT NULL,
    -- relative to the data directory: img_refs/<uuid>.<ext>
    image_path  VARCHAR(255) NOT NULL,
    model       VARCHAR(64) NOT NULL,
    created_at  DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Extra reference faces of a person, beyond the one in `users`.
CREATE TABLE faces (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    embedding   BLOB NOT NULL,
    model       VARCHAR(64) NOT NULL,
    image_path  VARCHAR(255) NOT NULL,
    CONSTRAINT faces_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per check-in. The names are copied so that the log stays readable after the person
-- is deleted without their history.
CREATE TABLE attendance (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    first_name  VARCHAR(255) NOT NULL,
    last_name   VARCHAR(255) NOT NULL,
    at          DATETIME(6) NOT NULL,
    similarity  DOUBLE NOT NULL,
    kiosk       VARCHAR(255) NULL,
    model       VARCHAR(64) NOT NULL,
    INDEX attendance_user_at (user_id, at),
    INDEX attendance_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
