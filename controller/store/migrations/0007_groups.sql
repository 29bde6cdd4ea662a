-- Group jobs: an execution's children (job steps, follow-ups) are read by their parent,
-- and a group retried from its first failed member records where it started.
CREATE INDEX IF NOT EXISTS executions_parent ON executions (parent_id);
ALTER TABLE executions ADD COLUMN resumed_from INTEGER;
