-- How many subtasks of each task are not yet finished, so "have they all
-- finished?" is a read of one row instead of an index probe. Triggers keep
-- the counts on every path that inserts, settles, requeues, cancels or
-- deletes a subtask (row-level here: SQLite has no statement triggers). The
-- table has PostgreSQL's shape; with one writer, `shard` is always 0.
CREATE TABLE task_open_counts (
    parent_id BLOB NOT NULL,
    shard     INTEGER NOT NULL,
    open      INTEGER NOT NULL,
    PRIMARY KEY (parent_id, shard)
);

INSERT INTO task_open_counts (parent_id, shard, open)
SELECT parent_id, 0, count(*) FROM tasks
WHERE parent_id IS NOT NULL AND status NOT IN ('complete', 'terminated')
GROUP BY parent_id;

CREATE TRIGGER task_open_counts_inserted AFTER INSERT ON tasks
WHEN NEW.parent_id IS NOT NULL AND NEW.status NOT IN ('complete', 'terminated')
BEGIN
    INSERT INTO task_open_counts (parent_id, shard, open) VALUES (NEW.parent_id, 0, 1)
    ON CONFLICT (parent_id, shard) DO UPDATE SET open = open + 1;
END;

CREATE TRIGGER task_open_counts_updated AFTER UPDATE OF status ON tasks
WHEN NEW.parent_id IS NOT NULL
    AND (OLD.status IN ('complete', 'terminated')) <> (NEW.status IN ('complete', 'terminated'))
BEGIN
    INSERT INTO task_open_counts (parent_id, shard, open)
    VALUES (NEW.parent_id, 0,
            CASE WHEN NEW.status IN ('complete', 'terminated') THEN -1 ELSE 1 END)
    ON CONFLICT (parent_id, shard) DO UPDATE SET open = open + excluded.open;
END;

CREATE TRIGGER task_open_counts_deleted AFTER DELETE ON tasks
BEGIN
    DELETE FROM task_open_counts WHERE parent_id = OLD.id;
    UPDATE task_open_counts SET open = open - 1
    WHERE OLD.status NOT IN ('complete', 'terminated') AND parent_id = OLD.parent_id;
END;

DROP INDEX tasks_open_children;
