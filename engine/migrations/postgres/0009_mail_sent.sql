-- When each archived email was handed to the mail server, apart from the email itself. In
-- `mail_log`, marking a row sent rewrote the whole row of ~14 KB, some four pages: measured,
-- 261 WAL pages for a batch of 64 emails, against 1 page for these 64 narrow rows.
CREATE TABLE mail_sent (
    outbox_id BIGINT PRIMARY KEY,
    sent_at BIGINT NOT NULL
);
INSERT INTO mail_sent (outbox_id, sent_at) SELECT outbox_id, sent_at FROM mail_log WHERE sent_at IS NOT NULL;
ALTER TABLE mail_log DROP COLUMN sent_at;
