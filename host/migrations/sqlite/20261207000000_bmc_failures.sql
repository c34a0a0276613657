-- The BMC health view (issue 18) reads each node's newest failure in its
-- timeline; this index holds the failures only, so that read does not scan
-- every entry. Keep equivalent to ../postgres/20261207000000_bmc_failures.sql.
CREATE INDEX node_events_failures ON node_events (node_name, seq) WHERE outcome = 'failure';
