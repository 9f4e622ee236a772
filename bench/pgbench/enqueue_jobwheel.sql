-- SPDX-License-Identifier: MIT
-- bench/suite/enqueue.py: one job per transaction through jobwheel's SQL API
-- (validation, INSERT, change-feed trigger, NOTIFY jobwheel_wake).
SELECT jobwheel.enqueue('noop');
