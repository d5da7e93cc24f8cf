-- Exclusions of the effective-access model (src/access): a revoke decided
-- in a review or by an administrator against access that a rule or a group
-- grants. It wins over every reason until it is lifted (deleted) or its
-- end passes. One per (user, application). The PostgreSQL migration of the
-- same name makes the same change; keep them in step.
CREATE TABLE access_exclusions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    application_id INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    resource_pk    INTEGER NOT NULL REFERENCES resources (pk) ON DELETE CASCADE,
    reason         TEXT,
    source         TEXT NOT NULL,
    created_by     TEXT,
    valid_until    TIMESTAMP,
    created        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX access_exclusions_pair ON access_exclusions (application_id, resource_pk);
CREATE INDEX access_exclusions_user ON access_exclusions (resource_pk);
CREATE INDEX access_exclusions_tenant ON access_exclusions (tenant_id, id);
