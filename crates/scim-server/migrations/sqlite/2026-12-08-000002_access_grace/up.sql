-- The effective-access model (src/access): a leaver rule's
-- revokeAfterSeconds is a grace period during which a deactivated user's
-- access keeps working. The evaluator records its end here; the schedule
-- marks the user's pairs due when it passes. The PostgreSQL migration of
-- the same name makes the same change; keep them in step.
ALTER TABLE lifecycle_state ADD COLUMN grace_until TIMESTAMP;
CREATE INDEX lifecycle_state_grace ON lifecycle_state (grace_until);
