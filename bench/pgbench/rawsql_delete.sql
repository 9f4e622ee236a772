-- SPDX-License-Identifier: MIT
-- One transaction: claim the 100 oldest ready rows (SKIP LOCKED) and delete
-- them, as a queue without history would.
DELETE FROM rawq q
USING (SELECT id FROM rawq
       WHERE state = 'ready' AND queue = 'default'
       ORDER BY priority, run_at, id
       LIMIT 100
       FOR UPDATE SKIP LOCKED) c
WHERE q.id = c.id;
