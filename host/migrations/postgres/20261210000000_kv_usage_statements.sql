-- Each driver's key-value usage is kept per statement instead of per row.
-- The row trigger ran a PL/pgSQL function and an upsert of the driver's
-- usage row for every key written: a writer batch of 500 keys updated the
-- same usage row 500 times in one transaction. Statement triggers with
-- transition tables add each statement's rows up once per driver. An
-- INSERT ... ON CONFLICT DO UPDATE fires both: the INSERT trigger sees the
-- rows it inserted, the UPDATE trigger the rows it updated. Totals stay
-- exact: each statement adjusts them in its own transaction, under the
-- usage row's lock.
DROP TRIGGER driver_kv_usage_track ON driver_kv;
DROP FUNCTION driver_kv_usage_track();

CREATE FUNCTION driver_kv_usage_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO driver_kv_usage AS u (driver, keys, bytes)
    SELECT driver, COUNT(*), SUM(OCTET_LENGTH(key) + OCTET_LENGTH(value))
      FROM kv_new GROUP BY driver ORDER BY driver
    ON CONFLICT (driver) DO UPDATE
       SET keys = u.keys + excluded.keys, bytes = u.bytes + excluded.bytes;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION driver_kv_usage_updated() RETURNS trigger AS $$
BEGIN
    INSERT INTO driver_kv_usage AS u (driver, keys, bytes)
    SELECT driver, SUM(k), SUM(b) FROM (
        SELECT driver, 1 AS k, OCTET_LENGTH(key) + OCTET_LENGTH(value) AS b FROM kv_new
        UNION ALL
        SELECT driver, -1, -(OCTET_LENGTH(key) + OCTET_LENGTH(value)) FROM kv_old
    ) d GROUP BY driver ORDER BY driver
    ON CONFLICT (driver) DO UPDATE
       SET keys = u.keys + excluded.keys, bytes = u.bytes + excluded.bytes;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION driver_kv_usage_deleted() RETURNS trigger AS $$
BEGIN
    UPDATE driver_kv_usage u SET keys = u.keys - d.keys, bytes = u.bytes - d.bytes
      FROM (SELECT driver, COUNT(*) AS keys,
                   SUM(OCTET_LENGTH(key) + OCTET_LENGTH(value)) AS bytes
              FROM kv_old GROUP BY driver) d
     WHERE u.driver = d.driver;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER driver_kv_usage_inserted AFTER INSERT ON driver_kv
REFERENCING NEW TABLE AS kv_new
FOR EACH STATEMENT EXECUTE FUNCTION driver_kv_usage_inserted();

CREATE TRIGGER driver_kv_usage_updated AFTER UPDATE ON driver_kv
REFERENCING OLD TABLE AS kv_old NEW TABLE AS kv_new
FOR EACH STATEMENT EXECUTE FUNCTION driver_kv_usage_updated();

CREATE TRIGGER driver_kv_usage_deleted AFTER DELETE ON driver_kv
REFERENCING OLD TABLE AS kv_old
FOR EACH STATEMENT EXECUTE FUNCTION driver_kv_usage_deleted();
