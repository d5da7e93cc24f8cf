DROP TRIGGER IF EXISTS resources_counted ON resources;
DROP FUNCTION IF EXISTS resources_count();
DROP TABLE resource_counts;
DROP INDEX attr_index_long;
DROP TABLE server_secrets;
