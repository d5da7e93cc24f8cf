DROP TRIGGER IF EXISTS resources_uncounted;
DROP TRIGGER IF EXISTS resources_counted;
DROP TABLE resource_counts;
DROP INDEX attr_index_long;
DROP TABLE server_secrets;
