-- Queries: the cursor signing secret, the index that finds truncated
-- attribute values, and resource counts per type. The PostgreSQL migration of the same name does the same.

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

-- The number of resources per tenant and type, kept by triggers in the
-- writing transaction, so that an unfiltered list answers totalResults
-- without counting a million rows. Sixteen shards per type (by pk) keep
-- concurrent creates on PostgreSQL from queueing on one row.
CREATE TABLE resource_counts (
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource_type TEXT NOT NULL,
    shard         INTEGER NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, shard)
);
INSERT INTO resource_counts (tenant_id, resource_type, shard, n)
    SELECT tenant_id, resource_type, pk % 16, COUNT(*) FROM resources
    GROUP BY tenant_id, resource_type, pk % 16;
CREATE TRIGGER resources_counted AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, shard, n)
        VALUES (NEW.tenant_id, NEW.resource_type, NEW.pk % 16, 1)
        ON CONFLICT (tenant_id, resource_type, shard) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER resources_uncounted AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND resource_type = OLD.resource_type
          AND shard = OLD.pk % 16;
END;
