-- Group memberships, the display label members are shown with, and the
-- user a token may be bound to (/Me). The SQLite migration of the same
-- name makes the same changes; keep them in step.

-- One row per direct member of a group, written in the same transaction as
-- the group's document (whose `members` list it mirrors). User.groups and
-- nested (indirect) memberships are computed from it.
CREATE TABLE memberships (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    group_pk    BIGINT NOT NULL REFERENCES resources (pk) ON DELETE CASCADE,
    member_pk   BIGINT NOT NULL REFERENCES resources (pk) ON DELETE CASCADE,
    member_type TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (group_pk, member_pk)
);
CREATE INDEX memberships_member ON memberships (member_pk);

-- What a resource is called when it is listed as a member or a group:
-- displayName, else userName. Kept by every write.
ALTER TABLE resources ADD COLUMN display TEXT;
UPDATE resources SET display = COALESCE(
    document::jsonb ->> 'displayName',
    document::jsonb ->> 'userName');

-- The SCIM id of the User that /Me means for this token (none: /Me is 404).
ALTER TABLE tokens ADD COLUMN user_id TEXT COLLATE "C";
