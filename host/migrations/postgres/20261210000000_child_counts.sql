-- How many subtasks of each task are not yet finished, so "have they all
-- finished?" is a read of a few rows instead of an index probe that walks an
-- entry per finished subtask until vacuum (15 ms per probe of a
-- 100,000-node task, asked after every batch of outcomes).
--
-- Triggers keep the counts, so every path that inserts, settles, requeues,
-- cancels or deletes a subtask keeps them right. They are statement-level
-- (transition tables): a batch of 250 outcomes writes one row per parent.
--
-- A parent's count is the sum of its rows, one per database session that
-- changed it (`shard` is the backend's pid). A session only ever locks its
-- own rows, so a stopped instance holding its transaction open blocks no
-- other instance's outcomes (a single count on the parent row would: every
-- outcome of every instance would queue behind the stopped one's lock).
CREATE TABLE task_open_counts (
    parent_id UUID NOT NULL,
    shard     INTEGER NOT NULL,
    open      BIGINT NOT NULL,
    PRIMARY KEY (parent_id, shard)
) WITH (fillfactor = 70);

INSERT INTO task_open_counts (parent_id, shard, open)
SELECT parent_id, 0, count(*) FROM tasks
WHERE parent_id IS NOT NULL AND status NOT IN ('complete', 'terminated')
GROUP BY parent_id;

-- Adds `delta` to this session's count of each parent (in parent order).
CREATE FUNCTION task_open_counts_add(parents uuid[], deltas bigint[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO task_open_counts AS c (parent_id, shard, open)
    SELECT d.parent_id, pg_backend_pid(), d.delta
    FROM unnest(parents, deltas) AS d(parent_id, delta)
    WHERE d.delta <> 0
    ORDER BY d.parent_id
    ON CONFLICT (parent_id, shard) DO UPDATE SET open = c.open + EXCLUDED.open
$$;

CREATE FUNCTION task_open_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parents uuid[]; deltas bigint[];
BEGIN
    SELECT array_agg(parent_id), array_agg(n) INTO parents, deltas
    FROM (SELECT parent_id, count(*) AS n FROM new_rows
          WHERE parent_id IS NOT NULL AND status NOT IN ('complete', 'terminated')
          GROUP BY parent_id) d;
    IF parents IS NOT NULL THEN
        PERFORM task_open_counts_add(parents, deltas);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION task_open_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parents uuid[]; deltas bigint[];
BEGIN
    SELECT array_agg(parent_id), array_agg(delta) INTO parents, deltas
    FROM (SELECT n.parent_id,
                 sum(CASE WHEN n.status IN ('complete', 'terminated') THEN -1 ELSE 1 END) AS delta
          FROM old_rows o JOIN new_rows n ON n.id = o.id
          WHERE n.parent_id IS NOT NULL
            AND (o.status IN ('complete', 'terminated')) <> (n.status IN ('complete', 'terminated'))
          GROUP BY n.parent_id) d;
    IF parents IS NOT NULL THEN
        PERFORM task_open_counts_add(parents, deltas);
    END IF;
    RETURN NULL;
END $$;

-- A deleted task takes its counts with it; a deleted open subtask of a
-- task that stays lowers its count.
CREATE FUNCTION task_open_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parents uuid[]; deltas bigint[];
BEGIN
    DELETE FROM task_open_counts WHERE parent_id IN (SELECT id FROM old_rows);
    SELECT array_agg(d.parent_id), array_agg(-d.n) INTO parents, deltas
    FROM (SELECT parent_id, count(*) AS n FROM old_rows
          WHERE parent_id IS NOT NULL AND status NOT IN ('complete', 'terminated')
          GROUP BY parent_id) d
    WHERE EXISTS (SELECT 1 FROM tasks p WHERE p.id = d.parent_id);
    IF parents IS NOT NULL THEN
        PERFORM task_open_counts_add(parents, deltas);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER task_open_counts_inserted AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_open_counts_inserted();
CREATE TRIGGER task_open_counts_updated AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_open_counts_updated();
CREATE TRIGGER task_open_counts_deleted AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_open_counts_deleted();

-- The counts replace the probe this index served.
DROP INDEX tasks_open_children;
