-- Queries: the cursor signing secret, the index that finds truncated
-- attribute values, and resource counts per type. The SQLite migration of the same name does the same.

-- Secrets shared by every replica on this database, created on first use
-- (the cursor HMAC key is the row named 'cursor').
CREATE TABLE server_secrets (
    name    TEXT COLLATE "C" PRIMARY KEY,
    value   TEXT NOT NULL,
    created TIMESTAMP NOT NULL
);

-- Index rows whose text may have been cut at 1024 bytes (see
-- store::index::MAX_INDEXED_TEXT_BYTES): a filter that the cut could make
-- wrong asks this small index whether any exist before trusting the
-- database alone. Queries must repeat this WHERE clause exactly.
CREATE INDEX attr_index_long ON attr_index (tenant_id, resource_type, attr)
    WHERE octet_length(text_folded) >= 1021 OR octet_length(text_exact) >= 1021;

-- The number of resources per tenant and type, kept by a trigger in the
-- writing transaction, so that an unfiltered list answers totalResults
-- without counting a million rows. Sixteen shards per type (by pk) keep
-- concurrent creates from queueing on one row lock.
CREATE TABLE resource_counts (
    tenant_id     BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource_type TEXT COLLATE "C" NOT NULL,
    shard         INTEGER NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, shard)
);
INSERT INTO resource_counts (tenant_id, resource_type, shard, n)
    SELECT tenant_id, resource_type, (pk % 16)::int, COUNT(*) FROM resources
    GROUP BY tenant_id, resource_type, (pk % 16)::int;
CREATE FUNCTION resources_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO resource_counts (tenant_id, resource_type, shard, n)
            VALUES (NEW.tenant_id, NEW.resource_type, (NEW.pk % 16)::int, 1)
            ON CONFLICT (tenant_id, resource_type, shard)
            DO UPDATE SET n = resource_counts.n + 1;
    ELSE
        UPDATE resource_counts SET n = n - 1
            WHERE tenant_id = OLD.tenant_id AND resource_type = OLD.resource_type
              AND shard = (OLD.pk % 16)::int;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER resources_counted AFTER INSERT OR DELETE ON resources
    FOR EACH ROW EXECUTE FUNCTION resources_count();
