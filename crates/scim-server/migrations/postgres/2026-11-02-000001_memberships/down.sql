ALTER TABLE tokens DROP COLUMN user_id;
ALTER TABLE resources DROP COLUMN display;
DROP TABLE memberships;
