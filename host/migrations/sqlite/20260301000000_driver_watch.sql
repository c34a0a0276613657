-- Whether instances watch the first calls of the active version and roll
-- it back past the error threshold (set by an operator's activation, not by
-- a rollback). Keep equivalent to ../postgres/20260301000000_driver_watch.sql.
ALTER TABLE active_drivers ADD COLUMN watched BOOLEAN NOT NULL DEFAULT FALSE;
