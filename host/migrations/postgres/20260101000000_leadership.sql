-- High availability: the leader lease (one row) and instance heartbeats.
-- Keep equivalent to ../sqlite/20260101000000_leadership.sql.

CREATE TABLE leader_lease (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    holder   TEXT NOT NULL,
    epoch    BIGINT NOT NULL,
    expires  TIMESTAMPTZ NOT NULL
);

CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    heartbeat  TIMESTAMPTZ NOT NULL,
    started    TIMESTAMPTZ NOT NULL
);
