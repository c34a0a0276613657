-- Installed driver versions (content-addressed by SHA-256) and the active
-- version per driver name. Keep equivalent to ../postgres/20260201000000_drivers.sql.

CREATE TABLE driver_versions (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    bytes       BLOB NOT NULL,
    size        INTEGER NOT NULL,
    manifest    TEXT NOT NULL,
    signer      TEXT,
    installed   TEXT NOT NULL,
    installed_by TEXT,
    PRIMARY KEY (name, version)
);

CREATE INDEX driver_versions_sha256 ON driver_versions (sha256);

-- One row per driver name with an installed active version; `generation`
-- grows with every activation, so instances polling this table see changes.
CREATE TABLE active_drivers (
    name        TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    previous    TEXT,
    generation  INTEGER NOT NULL,
    changed     TEXT NOT NULL,
    message     TEXT
);
