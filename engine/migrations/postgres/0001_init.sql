-- Workflow versions: every definition a case started on, by content hash, so that a case runs
-- to its end on the version it started with.
CREATE TABLE workflow_versions (
    workflow TEXT NOT NULL,
    hash TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workflow, hash)
);

-- The last case number per series and year (IT 2026/0042); allocated in the transaction that
-- creates the case, so numbers have neither gaps nor duplicates.
CREATE TABLE case_numbers (
    series TEXT NOT NULL,
    year BIGINT NOT NULL,
    last BIGINT NOT NULL,
    PRIMARY KEY (series, year)
);

-- A case's full state is the JSON body; the other columns are copies for lists and filters.
CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    workflow TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    started_by TEXT NOT NULL,
    title TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    -- `signal name` + ' ' + `correlation key` while the case waits for a signal.
    wait_key TEXT,
    -- The hash of the newest audit entry, so that deleting the newest entries is found too.
    audit_head TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL
);
CREATE INDEX cases_workflow_state ON cases (workflow, state);
CREATE INDEX cases_wait_key ON cases (wait_key);
CREATE INDEX cases_status_updated ON cases (status, updated_at);

-- Who holds which open task: the task list of a person without reading case bodies.
CREATE TABLE assignments (
    case_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    email TEXT NOT NULL,
    person TEXT,
    deadline BIGINT,
    PRIMARY KEY (case_id, task_id, email)
);
CREATE INDEX assignments_person ON assignments (person);
CREATE INDEX assignments_email ON assignments (email);

-- The audit trail: append-only, one hash chain per case.
CREATE TABLE audit (
    case_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    channel TEXT NOT NULL,
    what TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
);

-- Timers, keyed so that scheduling the same timer again replaces it.
CREATE TABLE timers (
    key TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    last_error TEXT
);
CREATE INDEX timers_due ON timers (due_at);

-- Reserved amounts (öre) per frame; a reservation is one conditional update.
CREATE TABLE ledger (
    frames TEXT NOT NULL,
    portfolio TEXT NOT NULL,
    year BIGINT NOT NULL,
    reserved BIGINT NOT NULL,
    PRIMARY KEY (frames, portfolio, year)
);

-- The first result of every command sent with an idempotency key.
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    case_id TEXT,
    result TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    case_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE ledger_entries (
    id BIGSERIAL PRIMARY KEY,
    case_id TEXT NOT NULL,
    ledger TEXT NOT NULL,
    frames TEXT NOT NULL,
    portfolio TEXT NOT NULL,
    year BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    at BIGINT NOT NULL
);

-- The audit trail cannot be changed through the application's connection; an edit made some
-- other way breaks the hash chain, which `beslut audit verify` finds.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
