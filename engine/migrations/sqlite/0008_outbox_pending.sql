-- Workers claim the oldest pending rows of one kind. The old index (status, next_attempt_at)
-- did not know the kind, so with a backlog of emails every claim of webhook rows, and every
-- claim of emails, read and sorted all pending rows: measured, 10-20 ms each with 16,000
-- emails pending, holding SQLite's one write lock while decisions waited. The partial index
-- holds only pending rows, in the order they are claimed, and a row leaves it when it is done.
DROP INDEX outbox_due;
CREATE INDEX outbox_pending ON outbox (kind, id) WHERE status = 'pending';
CREATE INDEX outbox_dead ON outbox (id) WHERE status = 'dead';
