-- The keyed audit chain and actor names (see store::audit). The other
-- backend's migration of the same name makes the same changes; keep them
-- in step.

-- How an entry's hash was made: 1 = SHA-256 over the first encoding
-- (every entry written before this migration), 2 = SHA-256 over the
-- second encoding (which adds actor_name; written when the server has no
-- audit key), 3 = HMAC-SHA256 over the second encoding with the audit key.
ALTER TABLE audit_log ADD COLUMN chain INTEGER NOT NULL DEFAULT 1;

-- The name of the token that acted (`token create --name`), when the
-- actor is a token.
ALTER TABLE audit_log ADD COLUMN actor_name TEXT;
