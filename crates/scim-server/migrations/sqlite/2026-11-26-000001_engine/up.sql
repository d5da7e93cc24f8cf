-- The engine's missing parts: the delayed delete of deactivateThenDelete,
-- group push (the membership ledger), scheduled reconciliation and its runs,
-- and the resource type of a log entry. The migration of the same name for
-- the other backend makes the same changes; keep them in step. New state
-- lives in side tables keyed like the tables it extends (diesel's default
-- limit is 16 columns per table).

-- Per pair: when a deactivated account is to be deleted
-- (deactivateThenDelete); the member ids last sent for a group (for targets
-- that do not echo members); the last reconciliation run that saw it
-- downstream.
CREATE TABLE engine_pair_state (
    application_id INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    resource_pk    INTEGER NOT NULL,
    delete_after   TIMESTAMP,
    ledger         TEXT,
    seen_run       INTEGER,
    PRIMARY KEY (application_id, resource_pk)
);

-- Per application: reconcile every N seconds (NULL: only on demand); when
-- it last started; what happens to a pushed group once it is no longer
-- assigned ('delete' or 'leave').
CREATE TABLE engine_app_settings (
    application_id INTEGER PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    reconcile_interval_seconds INTEGER,
    last_reconciled TIMESTAMP,
    group_deprovision TEXT NOT NULL
);

ALTER TABLE provisioning_log ADD COLUMN resource_type TEXT;
CREATE INDEX provisioning_state_remote ON provisioning_state (application_id, remote_id);
CREATE INDEX provisioning_state_resource_id ON provisioning_state (application_id, resource_id);

-- One reconciliation of an application: what was read and found.
CREATE TABLE reconcile_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    application_id INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    trigger_kind   TEXT NOT NULL,
    repair         BOOLEAN NOT NULL,
    status         TEXT NOT NULL,
    started        TIMESTAMP NOT NULL,
    finished       TIMESTAMP,
    remote_users   INTEGER NOT NULL DEFAULT 0,
    remote_groups  INTEGER NOT NULL DEFAULT 0,
    matched        INTEGER NOT NULL DEFAULT 0,
    drifted        INTEGER NOT NULL DEFAULT 0,
    orphans        INTEGER NOT NULL DEFAULT 0,
    missing        INTEGER NOT NULL DEFAULT 0,
    repaired       INTEGER NOT NULL DEFAULT 0,
    error          TEXT
);
CREATE INDEX reconcile_runs_app ON reconcile_runs (application_id, id);

-- What a run found: 'drift' (a managed attribute differs from what we
-- want), 'orphan' (downstream, unknown here) or 'missing' (we believe it
-- provisioned; the target does not have it).
CREATE TABLE reconcile_findings (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         INTEGER NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    application_id INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT,
    remote_id      TEXT,
    name           TEXT,
    detail         TEXT
);
CREATE INDEX reconcile_findings_run ON reconcile_findings (run_id, kind, id);
