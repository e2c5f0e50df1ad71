-- A person's task list, most urgent first, read in index order: the list query takes the
-- holder's rows by person id and by address (two index ranges merged), already sorted by
-- deadline, and stops at the page's end instead of sorting every open task. These replace the
-- indexes on person and email alone, which they begin with.
CREATE INDEX assignments_person_deadline ON assignments (person, deadline, case_id, task_id);
CREATE INDEX assignments_email_deadline ON assignments (email, deadline, case_id, task_id);
DROP INDEX assignments_person;
DROP INDEX assignments_email;
