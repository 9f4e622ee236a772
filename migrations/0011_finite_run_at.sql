-- SPDX-License-Identifier: MIT
-- run_at must be a real time. The SQL API took 'infinity' and '-infinity'
-- (REST refuses them): a '-infinity' job was aged to the lowest priority
-- and every claim of its queue then failed ("cannot subtract infinite
-- timestamps" in the feed trigger), so the queue stopped. The constraint
-- covers every path that writes run_at; a job that already holds one is
-- made due now ('-infinity') or parked at the end of time ('infinity').
UPDATE jobwheel.jobs SET run_at = CASE WHEN run_at < now() THEN created_at ELSE '9999-12-31 UTC' END
WHERE NOT isfinite(run_at);
-- NOT VALID, then VALIDATE: the check of the existing rows does not block
-- claims and enqueues meanwhile.
ALTER TABLE jobwheel.jobs ADD CONSTRAINT jobs_run_at_check CHECK (isfinite(run_at)) NOT VALID;
ALTER TABLE jobwheel.jobs VALIDATE CONSTRAINT jobs_run_at_check;
