-- The end of each case's audit chain is kept with the case: `audit_head` already, and now its
-- sequence number. A decision then appends to the chain without reading it first, and the
-- case's update, conditional on the sequence it read, shows any concurrent append as a
-- conflict to retry.
ALTER TABLE cases ADD COLUMN audit_seq BIGINT NOT NULL DEFAULT 0;
UPDATE cases SET audit_seq = COALESCE((SELECT MAX(seq) FROM audit WHERE audit.case_id = cases.id), 0);
