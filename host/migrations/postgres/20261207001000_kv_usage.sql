-- Each driver's key-value usage (keys, and bytes of keys plus values),
-- kept by triggers in the same transaction as every write, so the quota
-- check a driver call makes is one primary-key read instead of an
-- aggregate over all of the driver's keys (which grew with the fleet: at
-- 10,000 nodes every call summed 10,000 rows). Exact under concurrent
-- writers: each row change adjusts the total under the row's own lock.
CREATE TABLE driver_kv_usage (
    driver  TEXT PRIMARY KEY,
    keys    BIGINT NOT NULL,
    bytes   BIGINT NOT NULL
);

INSERT INTO driver_kv_usage (driver, keys, bytes)
SELECT driver, COUNT(*), COALESCE(SUM(OCTET_LENGTH(key) + OCTET_LENGTH(value)), 0)
FROM driver_kv GROUP BY driver;

CREATE FUNCTION driver_kv_usage_track() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR TG_OP = 'UPDATE' THEN
        UPDATE driver_kv_usage
           SET keys = keys - CASE WHEN TG_OP = 'DELETE' THEN 1 ELSE 0 END,
               bytes = bytes - (OCTET_LENGTH(OLD.key) + OCTET_LENGTH(OLD.value))
         WHERE driver = OLD.driver;
    END IF;
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
        INSERT INTO driver_kv_usage AS u (driver, keys, bytes)
        VALUES (NEW.driver, CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE 0 END,
                OCTET_LENGTH(NEW.key) + OCTET_LENGTH(NEW.value))
        ON CONFLICT (driver) DO UPDATE
           SET keys = u.keys + excluded.keys, bytes = u.bytes + excluded.bytes;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER driver_kv_usage_track
AFTER INSERT OR UPDATE OR DELETE ON driver_kv
FOR EACH ROW EXECUTE FUNCTION driver_kv_usage_track();
