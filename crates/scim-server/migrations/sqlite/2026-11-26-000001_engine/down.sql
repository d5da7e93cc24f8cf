DROP TABLE reconcile_findings;
DROP TABLE reconcile_runs;
DROP INDEX provisioning_state_resource_id;
DROP INDEX provisioning_state_remote;
ALTER TABLE provisioning_log DROP COLUMN resource_type;
DROP TABLE engine_app_settings;
DROP TABLE engine_pair_state;
