-- SPDX-License-Identifier: MIT
-- parent_results() is called in the outer SELECT of a worker's
-- report_and_claim(): one statement that first completes a batch of jobs,
-- then claims the next. A STABLE function reads with that statement's
-- snapshot, taken before the completions, so a child claimed in the same
-- batch that completed its parent saw that parent's result as NULL.
-- VOLATILE reads with a fresh snapshot per call and sees them.
ALTER FUNCTION jobwheel.parent_results(bigint[]) VOLATILE;
