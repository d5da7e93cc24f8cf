DROP TABLE provisioning_log;
DROP TABLE provisioning_state;
DROP TABLE assignments;
DROP TABLE applications;
