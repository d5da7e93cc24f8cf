-- Governance: the hash-chained audit log and access reviews. The
-- PostgreSQL migration of the same name makes the same changes; keep them
-- in step.

-- One row per recorded change, chained per tenant: `hash` is SHA-256 over
-- the canonical encoding of the row including `prev_hash` (the previous
-- row's hash; 64 zeros for the first). Rows are only ever inserted.
-- `subject` is the SCIM id of the user or group the entry concerns (the
-- resource written, an assignment's assignee, a provisioned user).
CREATE TABLE audit_log (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    seq         INTEGER NOT NULL,
    at          TIMESTAMP NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    subject     TEXT,
    before_json TEXT,
    after_json  TEXT,
    cause       INTEGER,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_target ON audit_log (tenant_id, target_type, target_id, seq);
CREATE INDEX audit_log_actor ON audit_log (tenant_id, actor, seq);
CREATE INDEX audit_log_action ON audit_log (tenant_id, action, seq);
CREATE INDEX audit_log_at ON audit_log (tenant_id, at);
CREATE INDEX audit_log_subject ON audit_log (tenant_id, subject, seq);

-- The head of each tenant's chain: the last seq and hash. Appends lock it
-- (serialising the chain) and verification compares the last row with it,
-- which detects rows removed from the end.
CREATE TABLE audit_heads (
    tenant_id INTEGER PRIMARY KEY REFERENCES tenants (id),
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL
);

-- An access review campaign over an application, a group's members or
-- everyone. `reviewers` is a JSON array ("token:<id>", "user:<scim id>").
CREATE TABLE review_campaigns (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    scope_type       TEXT NOT NULL,
    scope_id         TEXT,
    reviewers        TEXT NOT NULL,
    due_at           TIMESTAMP NOT NULL,
    default_decision TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created          TIMESTAMP NOT NULL,
    closed_at        TIMESTAMP
);
CREATE INDEX review_campaigns_open ON review_campaigns (status, due_at);
CREATE INDEX review_campaigns_tenant ON review_campaigns (tenant_id, id);

-- One item per (user, access) at campaign start. The user and application
-- names are copied so that results stay readable after a revoke.
CREATE TABLE review_items (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id      INTEGER NOT NULL REFERENCES review_campaigns (id) ON DELETE CASCADE,
    tenant_id        INTEGER NOT NULL,
    user_id          TEXT NOT NULL,
    user_name        TEXT,
    application_id   INTEGER NOT NULL,
    application_name TEXT NOT NULL,
    assignment_id    INTEGER NOT NULL,
    decision         TEXT,
    comment          TEXT,
    decided_by       TEXT,
    decided_at       TIMESTAMP,
    outcome          TEXT
);
CREATE INDEX review_items_campaign ON review_items (campaign_id, id);
