-- Lifecycle automation: playbooks, rules, their runs, the per-user due
-- marks and last-seen state the rule evaluator works from, group
-- memberships granted by rules, and temporary-access details of
-- assignments. The PostgreSQL migration of the same name makes the same
-- changes; keep them in step.

-- Temporary access: why and by whom an assignment was granted, when the
-- scheduler saw it start (NULL: not yet, or it has no start), and the
-- application-side role a playbook asked for.
ALTER TABLE assignments ADD COLUMN reason TEXT;
ALTER TABLE assignments ADD COLUMN granted_by TEXT;
ALTER TABLE assignments ADD COLUMN started_at TIMESTAMP;
ALTER TABLE assignments ADD COLUMN role TEXT;
CREATE INDEX assignments_valid_until ON assignments (valid_until) WHERE valid_until IS NOT NULL;
CREATE INDEX assignments_valid_from ON assignments (valid_from) WHERE valid_from IS NOT NULL AND started_at IS NULL;

-- Every extension of an assignment's end time.
CREATE TABLE assignment_extensions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    assignment_id  INTEGER NOT NULL,
    old_until      TIMESTAMP,
    new_until      TIMESTAMP,
    reason         TEXT,
    extended_by    TEXT,
    at             TIMESTAMP NOT NULL
);
CREATE INDEX assignment_extensions_assignment ON assignment_extensions (assignment_id, id);

-- A named bundle of actions (JSON array, see src/lifecycle/playbook.rs).
CREATE TABLE playbooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    actions     TEXT NOT NULL,
    created     TIMESTAMP NOT NULL,
    updated     TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX playbooks_tenant_name ON playbooks (tenant_id, name);

-- A condition (SCIM filter over the user), an event (joiner, mover,
-- leaver) and the playbooks to apply (JSON array of ids).
CREATE TABLE rules (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id            INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    event                TEXT NOT NULL,
    filter               TEXT NOT NULL,
    playbooks            TEXT NOT NULL,
    enabled              BOOLEAN NOT NULL,
    revoke_after_seconds BIGINT,
    created              TIMESTAMP NOT NULL,
    updated              TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX rules_tenant_name ON rules (tenant_id, name);

-- One run of a playbook on users: by hand (source 'manual') or by a rule
-- ('rule:<id>', with the change-log entry that fired it). `results` is a
-- JSON array of per-user, per-action outcomes.
CREATE TABLE playbook_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    playbook_id INTEGER NOT NULL,
    source      TEXT NOT NULL,
    cause_seq   BIGINT,
    actor       BIGINT,
    results     TEXT NOT NULL,
    at          TIMESTAMP NOT NULL
);
CREATE INDEX playbook_runs_playbook ON playbook_runs (tenant_id, playbook_id, id);

-- Users whose rules must be evaluated again: marked in the transaction of
-- every User write, cleared in the transaction that evaluates them (only
-- when `generation` is still the one read).
CREATE TABLE lifecycle_due (
    tenant_id   INTEGER NOT NULL,
    resource_id TEXT NOT NULL,
    generation  BIGINT NOT NULL,
    due_since   TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, resource_id)
);

-- What the evaluator last saw of a user: active or not, and which rules
-- held (JSON array of rule ids), so joiners, movers and leavers can be told
-- apart.
CREATE TABLE lifecycle_state (
    tenant_id   INTEGER NOT NULL,
    resource_id TEXT NOT NULL,
    active      BOOLEAN NOT NULL,
    held_rules  TEXT NOT NULL,
    updated     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, resource_id)
);

-- Local group memberships a rule granted (so a mover can take them back).
CREATE TABLE lifecycle_group_grants (
    tenant_id   INTEGER NOT NULL,
    user_pk     INTEGER NOT NULL REFERENCES resources (pk) ON DELETE CASCADE,
    group_pk    INTEGER NOT NULL REFERENCES resources (pk) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    PRIMARY KEY (user_pk, group_pk, source)
);

-- What the rule evaluator did for a user: the event (joiner, mover,
-- leaver), the rules that fired, what was granted and revoked, and the
-- change-log entry that caused it.
CREATE TABLE lifecycle_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL,
    event       TEXT NOT NULL,
    cause_seq   BIGINT,
    detail      TEXT NOT NULL,
    at          TIMESTAMP NOT NULL
);
CREATE INDEX lifecycle_events_resource ON lifecycle_events (tenant_id, resource_id, id);
