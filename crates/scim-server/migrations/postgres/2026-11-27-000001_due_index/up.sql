-- Indexes for the background passes that run every second. The SQLite
-- migration of the same name makes the same changes; keep them in step.

-- The lifecycle evaluator takes the oldest due users of every tenant:
-- ORDER BY due_since LIMIT n (see store::lifecycle::due_users).
CREATE INDEX lifecycle_due_since ON lifecycle_due (due_since);

-- The provisioning engine claims due pairs oldest first:
-- WHERE due ORDER BY due_since, resource_pk LIMIT n (see
-- store::provisioning::claim_due). With this order in the index the pass
-- stops after n rows instead of sorting every due pair.
CREATE INDEX provisioning_state_due_order ON provisioning_state (due, due_since, resource_pk);
