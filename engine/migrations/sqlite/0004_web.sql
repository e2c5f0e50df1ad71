-- Signed-in sessions of the web pages. Only the SHA-256 of the cookie's token is kept, so a
-- leaked database signs nobody in. `method` says how the person proved who they are
-- (`email-link` today; `oidc` or `saml` when municipal single sign-on is added).
CREATE TABLE web_sessions (
    hash TEXT PRIMARY KEY,
    -- A person id from directory.yaml, or the address of someone not in it.
    who TEXT NOT NULL,
    email TEXT NOT NULL,
    method TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);

-- Everyone who started a case or was ever given one of its tasks: the people who may see it
-- without a viewing role. Rows are only ever added.
CREATE TABLE case_people (
    case_id TEXT NOT NULL,
    who TEXT NOT NULL,
    PRIMARY KEY (case_id, who)
);
CREATE INDEX case_people_who ON case_people (who);
INSERT INTO case_people (case_id, who) SELECT id, LOWER(started_by) FROM cases;
INSERT INTO case_people (case_id, who) SELECT DISTINCT case_id, COALESCE(person, email) FROM assignments WHERE true
    ON CONFLICT DO NOTHING;

-- The förvaltning a case belongs to (its `forvaltning` field), for the case list's filter.
ALTER TABLE cases ADD COLUMN forvaltning TEXT;
UPDATE cases SET forvaltning = json_extract(body, '$.data.forvaltning');
CREATE INDEX cases_started ON cases (started_at, id);
