-- High availability: the leader lease (one row) and instance heartbeats.
-- Keep equivalent to ../postgres/20260101000000_leadership.sql. (SQLite
-- serves one instance; the tables keep the schemas alike.)

CREATE TABLE leader_lease (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    holder   TEXT NOT NULL,
    epoch    INTEGER NOT NULL,
    expires  TEXT NOT NULL
);

CREATE TABLE instances (
    id         TEXT PRIMARY KEY NOT NULL,
    heartbeat  TEXT NOT NULL,
    started    TEXT NOT NULL
);
