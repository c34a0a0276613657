-- Secret scopes (issue 13): what a stored secret may be used for, and the
-- one node a secret stored by POST /nodes serves. Existing secrets were all
-- stored by POST /nodes: each belongs to the node naming it (the first by
-- name when several do).
ALTER TABLE secrets ADD COLUMN scope TEXT NOT NULL DEFAULT 'oob';
ALTER TABLE secrets ADD COLUMN owner TEXT;
UPDATE secrets SET owner = (
    SELECT n.name FROM nodes n WHERE n.credential = secrets.name ORDER BY n.name LIMIT 1
);
