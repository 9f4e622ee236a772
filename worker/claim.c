/* SPDX-License-Identifier: MIT */
/* Claims jobs for the free slots and reports outcomes in batches. */
#include <stdio.h>
#include <string.h>

#include "claim.h"
#include "lease_guard.h"
#include "log.h"
#include "running.h"
#include "worker_impl.h"

bool claim_in_flight(const struct worker *w)
{
	return w->asked[0] || w->asked[1];
}

static void claim_done(struct pgconn *db, PGresult *res, void *arg)
{
	struct worker *w = arg;
	int i = db == w->db ? 0 : 1, *slot = &w->asked[i], asked = *slot, n;
	double sent = w->asked_at[i];

	*slot = 0;
	if (!res) {
		w->more_work = true; /* claim again after the reconnect */
		return;
	}
	if (!pgconn_result_ok(res)) {
		log_error("claim failed: %s", PQresultErrorMessage(res));
		return; /* the poll timer tries again */
	}
	n = PQntuples(res);
	/* An answer that took longer than the leases surely last (the worker
	 * was frozen, the network slow): the jobs may be running elsewhere by
	 * now. Leave them to expire and be retried rather than run them twice. */
	if (n > 0 && ev_now(w->loop) - sent >= lease_guard_held_for_s(w->cfg)) {
		log_warn("a claim of %d job(s) was answered after %.1f s: not starting them (their leases may have "
			 "expired)", n, ev_now(w->loop) - sent);
		return;
	}
	for (int k = 0; k < n; k++)
		running_start(w, res, k);
	/* Fresh leases, counted from when the claim was sent. */
	if (n > 0 && !lease_guard_armed(w))
		lease_guard_arm(w, sent);
	/* A full batch means there may be more; so does a wake-up during the claim. */
	w->more_work = w->more_work || w->claim_again || n == asked;
	w->claim_again = false;
}

static void report_done(struct pgconn *db, PGresult *res, void *arg)
{
	struct worker *w = arg;

	w->reporting = false;
	if (!res) {
		outcomes_unsent(&w->out); /* resent after the reconnect */
		return;
	}
	if (!pgconn_result_ok(res)) {
		/* Not expected (fenced writes do not fail); keep them for a retry. */
		log_error("reporting outcomes failed: %s", PQresultErrorMessage(res));
		outcomes_unsent(&w->out);
		return;
	}
	outcomes_sent(&w->out);
}

static void report_and_claim_done(struct pgconn *db, PGresult *res, void *arg)
{
	report_done(db, res, arg);
	claim_done(db, res, arg);
}

/* How many jobs to claim now, or 0: the free slots not reserved by a claim
 * in flight. */
static int claim_size(const struct worker *w)
{
	int free_slots = (int)w->cfg->worker_concurrency - w->running - w->asked[0] - w->asked[1];

	if (w->phase != PHASE_RUNNING || !w->more_work)
		return 0;
	return free_slots > 0 ? free_slots : 0;
}

/* Where a claim goes: the main connection when idle; else the claim
 * connection, so that a claim never waits for the WAL flush of a report or
 * of another claim; else behind the report. NULL: both claims are out. */
static struct pgconn *claim_connection(struct worker *w, int **ret_slot)
{
	if (!w->asked[0] && pgconn_pending(w->db) == 0) {
		*ret_slot = &w->asked[0];
		return w->db;
	}
	if (!w->asked[1] && pgconn_is_connected(w->claim_db)) {
		*ret_slot = &w->asked[1];
		return w->claim_db;
	}
	if (!w->asked[0]) {
		*ret_slot = &w->asked[0];
		return w->db;
	}
	return NULL;
}

/* Sends what this loop iteration gathered: outcomes and a claim go in one
 * statement (one commit) when there are both; otherwise whichever there is. */
void claim_and_report(struct worker *w)
{
	const char *params[12];
	const char *sql = NULL;
	char n[16], lease[24];
	const char *claim_params[4] = { w->id, strbuf_str(&w->queues_array), n, lease };
	int want = claim_size(w), *slot;
	bool report = !w->reporting && outcomes_waiting(&w->out) > 0;
	struct pgconn *db;

	if (report && !(sql = outcomes_begin_send(&w->out, params))) {
		log_error("out of memory building the outcome batch");
		report = false;
	}
	snprintf(n, sizeof(n), "%d", want);
	snprintf(lease, sizeof(lease), "%lld", (long long)w->cfg->worker_lease_ms);
	if (report && want > 0 && !w->asked[0]) {
		memcpy(params + 8, claim_params, sizeof(claim_params));
		if (pgconn_query(w->db, outcomes_report_and_claim_sql, 12, params, report_and_claim_done, w) < 0) {
			outcomes_unsent(&w->out);
			return;
		}
		w->reporting = true;
		w->asked[0] = want;
		w->asked_at[0] = ev_now(w->loop);
		w->more_work = false;
		return;
	}
	if (report) {
		if (pgconn_query(w->db, sql, 8, params, report_done, w) < 0) {
			outcomes_unsent(&w->out);
			return;
		}
		w->reporting = true;
	}
	db = want > 0 ? claim_connection(w, &slot) : NULL;
	if (db && pgconn_query(db, "SELECT " CLAIM_COLUMNS " FROM jobwheel.claim($1, $2::text[], $3, $4)", 4,
			       claim_params, claim_done, w) == 0) {
		*slot = want;
		w->asked_at[slot - w->asked] = ev_now(w->loop);
		w->more_work = false;
	}
}
