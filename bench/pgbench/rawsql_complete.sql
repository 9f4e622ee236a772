-- SPDX-License-Identifier: MIT
-- One transaction: claim the 100 oldest ready rows (SKIP LOCKED, in the
-- order and through the index jobwheel's claim uses) and mark them
-- succeeded, keeping the rows as jobwheel keeps its history.
UPDATE rawq q
SET state = 'succeeded', attempt = q.attempt + 1, finished_at = now()
FROM (SELECT id FROM rawq
      WHERE state = 'ready' AND queue = 'default'
      ORDER BY priority, run_at, id
      LIMIT 100
      FOR UPDATE SKIP LOCKED) c
WHERE q.id = c.id;
