-- Task log lines for local mode (Azure keeps them in Table storage with the same shape:
-- PartitionKey = task id, RowKey = zero-padded seq). Keyed by text, without a foreign key,
-- so the log store stays a port independent of the models, as it is in Azure.

-- One row per task holding the last sequence number handed out. Appenders for the same
-- task serialise on this row (INSERT ... ON CONFLICT DO UPDATE takes its lock), which is
-- what makes sequence numbers consecutive and gap-free under concurrency.
CREATE TABLE task_log_heads (
    task_id  text PRIMARY KEY,
    last_seq integer NOT NULL,
    CONSTRAINT task_log_heads_last_seq_positive CHECK (last_seq > 0)
);

CREATE TABLE task_log_lines (
    task_id text NOT NULL,
    seq     integer NOT NULL,
    at      timestamptz NOT NULL,
    level   text NOT NULL,
    text    text NOT NULL,
    PRIMARY KEY (task_id, seq),
    CONSTRAINT task_log_lines_seq_positive CHECK (seq > 0)
);
