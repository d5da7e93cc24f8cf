-- Tenants, API tokens, resources with their attribute index, and the change log.
-- The PostgreSQL migration of the same name creates the same tables; keep them in step.

CREATE TABLE tenants (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT NOT NULL,
    created TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX tenants_name_key ON tenants (name);

-- Bearer tokens. Only the SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created    TIMESTAMP NOT NULL,
    last_used  TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX tokens_hash_key ON tokens (hash);
CREATE INDEX tokens_tenant ON tokens (tenant_id);

-- One row per SCIM resource: the canonical JSON document plus the columns
-- that uniqueness and point lookups need. Case folding happens in Rust, so
-- the *_folded columns compare with the plain binary collation.
CREATE TABLE resources (
    pk                  INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id           INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource_type       TEXT NOT NULL,
    id                  TEXT NOT NULL,
    version             BIGINT NOT NULL,
    document            TEXT NOT NULL,
    user_name_folded    TEXT,
    display_name_folded TEXT,
    external_id         TEXT,
    created             TIMESTAMP NOT NULL,
    last_modified       TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX resources_tenant_id_key ON resources (tenant_id, id);
CREATE UNIQUE INDEX resources_user_name_folded_key
    ON resources (tenant_id, resource_type, user_name_folded);
CREATE UNIQUE INDEX resources_display_name_folded_key
    ON resources (tenant_id, resource_type, display_name_folded);
CREATE INDEX resources_external_id ON resources (tenant_id, resource_type, external_id);
CREATE INDEX resources_type_pk ON resources (tenant_id, resource_type, pk);

-- One row per indexed value of a resource (see docs/ARCHITECTURE.md).
CREATE TABLE attr_index (
    resource_pk   INTEGER NOT NULL REFERENCES resources (pk) ON DELETE CASCADE,
    tenant_id     INTEGER NOT NULL,
    resource_type TEXT NOT NULL,
    attr          TEXT NOT NULL,
    ordinal       INTEGER NOT NULL,
    text_folded   TEXT,
    text_exact    TEXT,
    num           REAL,
    time_us       BIGINT,
    boolean       BOOLEAN
);
CREATE INDEX attr_index_text
    ON attr_index (tenant_id, resource_type, attr, text_folded, resource_pk);
CREATE INDEX attr_index_exact
    ON attr_index (tenant_id, resource_type, attr, text_exact, resource_pk)
    WHERE text_exact IS NOT NULL;
CREATE INDEX attr_index_num
    ON attr_index (tenant_id, resource_type, attr, num, resource_pk)
    WHERE num IS NOT NULL;
CREATE INDEX attr_index_time
    ON attr_index (tenant_id, resource_type, attr, time_us, resource_pk)
    WHERE time_us IS NOT NULL;
CREATE INDEX attr_index_boolean
    ON attr_index (tenant_id, resource_type, attr, boolean, resource_pk)
    WHERE boolean IS NOT NULL;
CREATE INDEX attr_index_element ON attr_index (resource_pk, attr, ordinal);

-- Every write appends one row, in the same transaction as the write.
CREATE TABLE change_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    version       BIGINT NOT NULL,
    op            TEXT NOT NULL,
    actor         BIGINT,
    at            TIMESTAMP NOT NULL
);
CREATE INDEX change_log_tenant_seq ON change_log (tenant_id, seq);
CREATE INDEX change_log_resource ON change_log (tenant_id, resource_id, seq);
