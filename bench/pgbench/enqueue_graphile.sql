-- SPDX-License-Identifier: MIT
-- bench/suite/enqueue.py: one job per transaction through graphile-worker's
-- SQL API (which also NOTIFYs its workers).
SELECT graphile_worker.add_job('noop', '{}');
