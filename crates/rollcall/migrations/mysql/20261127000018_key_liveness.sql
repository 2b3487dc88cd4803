-- A key may require liveness of its check-ins: a single photo sent with it is recognised but
-- nobody is checked in (as `--require-liveness` does for every caller).
ALTER TABLE api_keys ADD COLUMN require_liveness BOOLEAN NOT NULL DEFAULT FALSE;
