-- An Idempotency-Key names one request, not just one caller's slot: the key is stored with
-- a digest of what was asked (operation, environment, route and body), so the same key
-- sent with a different request is refused (422) instead of replaying an unrelated task.
-- Rows from before this migration have no digest; they are compared by operation and
-- environment only.

ALTER TABLE tasks ADD COLUMN request_fingerprint text;
