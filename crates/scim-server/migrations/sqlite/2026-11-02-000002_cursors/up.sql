-- Queries: the cursor signing secret, and the index that finds truncated
-- attribute values. The PostgreSQL migration of the same name does the same.

-- Secrets shared by every replica on this database, created on first use
-- (the cursor HMAC key is the row named 'cursor').
CREATE TABLE server_secrets (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    created TIMESTAMP NOT NULL
);

-- Index rows whose text may have been cut at 1024 bytes (see
-- store::index::MAX_INDEXED_TEXT_BYTES): a filter that the cut could make
-- wrong asks this small index whether any exist before trusting the
-- database alone. Queries must repeat this WHERE clause exactly.
CREATE INDEX attr_index_long ON attr_index (tenant_id, resource_type, attr)
    WHERE octet_length(text_folded) >= 1021 OR octet_length(text_exact) >= 1021;
