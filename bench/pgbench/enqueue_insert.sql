-- SPDX-License-Identifier: MIT
-- bench/suite/enqueue.py: the same row as jobwheel.enqueue('noop') inserted
-- directly: the same table, indexes and change-feed trigger, no NOTIFY.
INSERT INTO jobwheel.jobs (kind) VALUES ('noop');
