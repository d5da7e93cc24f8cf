DROP INDEX provisioning_state_due_order;
DROP INDEX lifecycle_due_since;
