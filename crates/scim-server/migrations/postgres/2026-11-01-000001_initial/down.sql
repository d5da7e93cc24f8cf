DROP TABLE change_log;
DROP TABLE attr_index;
DROP TABLE resources;
DROP TABLE tokens;
DROP TABLE tenants;
