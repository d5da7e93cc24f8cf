-- Provisioning: applications (downstream SCIM targets), assignments of
-- users and groups to them, the per-pair provisioning state the engine works
-- from, and the log of requests sent. The PostgreSQL migration of the same
-- name makes the same changes; keep them in step.

-- A downstream SCIM service provider. `credentials` is the encrypted
-- secret (nonce || ciphertext, see crate::secrets); it is never returned.
-- `mapping`, `managed_attributes` and `deprovision` are JSON documents.
CREATE TABLE applications (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id           INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    base_url            TEXT NOT NULL,
    auth_type           TEXT NOT NULL,
    credentials         BLOB,
    mapping             TEXT NOT NULL,
    managed_attributes  TEXT NOT NULL,
    deprovision         TEXT NOT NULL,
    rate_per_second     DOUBLE,
    max_concurrency     INTEGER NOT NULL,
    enabled             BOOLEAN NOT NULL,
    quarantined_until   TIMESTAMP,
    quarantine_reason   TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created             TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX applications_tenant_name ON applications (tenant_id, name);

-- A user or group assigned to an application. A group assignment covers
-- its members. valid_from/valid_until bound the assignment in time (NULL:
-- unbounded).
CREATE TABLE assignments (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    application_id INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    resource_pk    INTEGER NOT NULL REFERENCES resources (pk) ON DELETE CASCADE,
    resource_type  TEXT NOT NULL,
    source         TEXT NOT NULL,
    valid_from     TIMESTAMP,
    valid_until    TIMESTAMP,
    created        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX assignments_key ON assignments (application_id, resource_pk, source);
CREATE INDEX assignments_resource ON assignments (resource_pk);

-- One row per (application, resource) pair the engine has to look at or has
-- provisioned. No foreign key to resources: the row outlives a deleted
-- resource until the deletion has been sent downstream.
CREATE TABLE provisioning_state (
    application_id INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    resource_pk    INTEGER NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    remote_id      TEXT,
    last_sent_hash TEXT,
    last_sent      TEXT,
    status         TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP,
    last_error     TEXT,
    due            BOOLEAN NOT NULL,
    due_since      TIMESTAMP,
    claimed_by     TEXT,
    claimed_until  TIMESTAMP,
    updated        TIMESTAMP NOT NULL,
    PRIMARY KEY (application_id, resource_pk)
);
CREATE INDEX provisioning_state_due ON provisioning_state (due, next_attempt_at);
CREATE INDEX provisioning_state_resource ON provisioning_state (resource_pk);

-- Every request sent downstream and its answer, secrets redacted.
CREATE TABLE provisioning_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    application_id INTEGER NOT NULL,
    resource_id    TEXT,
    method         TEXT NOT NULL,
    url            TEXT NOT NULL,
    request_body   TEXT,
    status         INTEGER,
    response_body  TEXT,
    error          TEXT,
    at             TIMESTAMP NOT NULL,
    duration_ms    BIGINT NOT NULL
);
CREATE INDEX provisioning_log_app ON provisioning_log (application_id, id);
CREATE INDEX provisioning_log_resource ON provisioning_log (resource_id, id);
