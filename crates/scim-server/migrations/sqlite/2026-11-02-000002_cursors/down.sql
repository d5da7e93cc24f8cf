DROP INDEX attr_index_long;
DROP TABLE server_secrets;
