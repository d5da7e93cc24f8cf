DROP INDEX lifecycle_state_grace;
ALTER TABLE lifecycle_state DROP COLUMN grace_until;
