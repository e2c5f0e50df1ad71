-- Decision and sign-in links: only the SHA-256 of each token is kept.
CREATE TABLE link_tokens (
    hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    case_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    action TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    outbox_id BIGINT
);
CREATE INDEX link_tokens_task ON link_tokens (case_id, task_id);

-- Every email as rendered, under its outbox row: a retry sends exactly this message again
-- (same Message-ID, same links), and closed cases can be exported with what staff received.
CREATE TABLE mail_log (
    outbox_id BIGINT PRIMARY KEY,
    case_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    links TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX mail_log_case ON mail_log (case_id);
