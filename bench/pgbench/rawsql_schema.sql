-- SPDX-License-Identifier: MIT
-- bench/suite/rawsql.py: the smallest table a job queue can be, to measure the
-- raw-SQL limit of claiming and completing jobs on this PostgreSQL. Same
-- claim index as jobwheel.jobs (migrations/0001_schema.sql).
CREATE TABLE rawq (
	id          bigserial PRIMARY KEY,
	queue       text NOT NULL DEFAULT 'default',
	kind        text NOT NULL DEFAULT 'noop',
	state       text NOT NULL DEFAULT 'ready',
	priority    int NOT NULL DEFAULT 0,
	attempt     int NOT NULL DEFAULT 0,
	run_at      timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz,
	payload     jsonb NOT NULL DEFAULT '{}'
);
ALTER TABLE rawq SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX rawq_ready_idx ON rawq (queue, priority, run_at, id) WHERE state = 'ready';
