-- A key may require liveness of its check-ins: a single photo sent with it is recognised but
-- nobody is checked in (as `--require-liveness` does for every caller). 0 or 1.
ALTER TABLE api_keys ADD COLUMN require_liveness INTEGER NOT NULL DEFAULT 0;
