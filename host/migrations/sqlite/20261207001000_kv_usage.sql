-- Each driver's key-value usage (keys, and bytes of keys plus values),
-- kept by triggers in the same transaction as every write, so the quota
-- check a driver call makes is one primary-key read instead of an
-- aggregate over all of the driver's keys.
CREATE TABLE driver_kv_usage (
    driver  TEXT PRIMARY KEY,
    keys    INTEGER NOT NULL,
    bytes   INTEGER NOT NULL
);

INSERT INTO driver_kv_usage (driver, keys, bytes)
SELECT driver, COUNT(*), COALESCE(SUM(OCTET_LENGTH(key) + OCTET_LENGTH(value)), 0)
FROM driver_kv WHERE true GROUP BY driver;

CREATE TRIGGER driver_kv_usage_insert AFTER INSERT ON driver_kv
BEGIN
    INSERT INTO driver_kv_usage (driver, keys, bytes)
    VALUES (NEW.driver, 1, OCTET_LENGTH(NEW.key) + OCTET_LENGTH(NEW.value))
    ON CONFLICT (driver) DO UPDATE
       SET keys = keys + excluded.keys, bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER driver_kv_usage_update AFTER UPDATE ON driver_kv
BEGIN
    UPDATE driver_kv_usage
       SET bytes = bytes - (OCTET_LENGTH(OLD.key) + OCTET_LENGTH(OLD.value))
                         + (OCTET_LENGTH(NEW.key) + OCTET_LENGTH(NEW.value))
     WHERE driver = NEW.driver;
END;

CREATE TRIGGER driver_kv_usage_delete AFTER DELETE ON driver_kv
BEGIN
    UPDATE driver_kv_usage
       SET keys = keys - 1,
           bytes = bytes - (OCTET_LENGTH(OLD.key) + OCTET_LENGTH(OLD.value))
     WHERE driver = OLD.driver;
END;
