-- The version of each workflow that new cases start on, shared by every node. A node publishes
-- a workflow file when it sees it change while running, or at start when its content was never
-- published; otherwise it follows what is published here, so that every node runs the same
-- versions and a node with a stale folder cannot roll the others back.
CREATE TABLE workflow_current (
    workflow TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    published_at BIGINT NOT NULL
);
