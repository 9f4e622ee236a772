/* SPDX-License-Identifier: MIT */
/* Leader election: a session advisory lock on the coordinator's own
 * connection. Followers try every 500 ms; the leader stops acting the moment
 * its connection (and with it the lock) is gone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"
#include "log.h"
#include "rand.h"
#include "sdnotify.h"
#include "util.h"

#define LEAD_RETRY_S 0.5

int64_t coord_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t coord_db_now_ms(const struct coord *c)
{
	return coord_wall_ms() + c->clock_offset_ms;
}

int coord_parse_ids(const char *s, int64_t **ret)
{
	int n = 1, count = 0;
	int64_t *v;

	for (const char *p = s; *p; p++)
		n += *p == ',';
	v = malloc((size_t)n * sizeof(*v));
	if (!v)
		return -1;
	while (count < n && pgarray_next_int(&s, &v[count]))
		count++;
	*ret = v;
	return count;
}

static void become_follower(struct coord *c, const char *why)
{
	if (!c->leader)
		return;
	c->leader = false;
	log_warn("no longer the leader: %s", why);
	delayed_stop(c);
	maint_stop(c);
	vacuum_stop(c);
	cron_stop(c);
}

static void lead_done(struct pgconn *db, PGresult *res, void *arg)
{
	struct coord *c = arg;

	c->trying = false;
	if (!res || !pgconn_result_ok(res)) {
		if (res)
			log_error("try_lead failed: %s", PQresultErrorMessage(res));
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0 || c->leader || c->stopping)
		return;
	c->leader = true;
	log_info("coordinator %s is now the leader (timer: %s)", c->id, timer_kind_name(c->timer_kind));
	sdnotify_status("leader");
	delayed_start(c);
	maint_start(c);
	vacuum_start(c);
	cron_start(c);
}

static void ignore_result(struct pgconn *db, PGresult *res, void *arg)
{
	if (res && !pgconn_result_ok(res))
		log_error("%s failed: %s", (const char *)arg, PQresultErrorMessage(res));
}

/* Every LEAD_RETRY_S: heartbeat as leader, or try to become one. */
static void on_lead_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct coord *c = container_of(t, struct coord, lead_timer);
	const char *params[1] = { c->id };

	sdnotify_watchdog();
	if (!pgconn_is_connected(c->db) || c->trying || c->stopping)
		return;
	if (c->leader) {
		pgconn_query(c->db, "SELECT jobwheel.coordinator_heartbeat($1)", 1, params, ignore_result,
			     "heartbeat");
	} else if (pgconn_query(c->db, "SELECT jobwheel.try_lead($1)", 1, params, lead_done, c) == 0) {
		c->trying = true;
	}
}

static void on_connected(struct pgconn *db, void *arg)
{
	struct coord *c = arg;
	char pid[16];
	const char *params[3] = { c->id, c->host, pid };

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	/* Let the server notice a vanished coordinator host within ~3 s, so
	 * that its lock is freed for a follower (the kernel default is hours). */
	pgconn_query(db,
		     "SELECT set_config('tcp_keepalives_idle', '1', false), set_config('tcp_keepalives_interval', '1', false),"
		     " set_config('tcp_keepalives_count', '2', false), set_config('tcp_user_timeout', '2500', false)",
		     0, NULL, ignore_result, "setting keepalives");
	pgconn_query(db, "LISTEN jobwheel_schedules", 0, NULL, ignore_result, "LISTEN jobwheel_schedules");
	pgconn_query(db, "SELECT jobwheel.register_coordinator($1, $2, $3)", 3, params, ignore_result,
		     "registering the coordinator");
	sdnotify_ready();
	on_lead_timer(c->loop, &c->lead_timer, 0);
}

static void on_disconnected(struct pgconn *db, const char *why, void *arg)
{
	struct coord *c = arg;

	c->trying = false;
	/* The lock went with the session: whatever we do next would not be
	 * fenced, so stop leading at once. */
	become_follower(c, why);
}

static void on_notify(struct pgconn *db, const char *channel, const char *payload, void *arg)
{
	struct coord *c = arg;

	if (strcmp(channel, "jobwheel_schedules") == 0 && c->leader)
		cron_changed(c);
}

static void on_maint_lost(struct pgconn *db, const char *why, void *arg)
{
	log_warn("maintenance connection lost: %s; reconnecting", why);
}

int coord_init(struct coord *c, struct ev_loop *loop, struct config *cfg)
{
	static const struct pgconn_callbacks db_cbs = {
		.connected = on_connected,
		.disconnected = on_disconnected,
		.notify = on_notify,
	};
	static const struct pgconn_callbacks maint_cbs = { .disconnected = on_maint_lost };
	struct rng r;

	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->cfg = cfg;
	c->timer_kind = strcmp(cfg->coordinator_timer, "heap") == 0 ? TIMER_HEAP : TIMER_WHEEL;
	if (gethostname(c->host, sizeof(c->host) - 1) < 0)
		snprintf(c->host, sizeof(c->host), "unknown");
	rng_seed(&r, 0);
	snprintf(c->id, sizeof(c->id), "%s:%d:%04x", c->host, (int)getpid(), (unsigned)(rng_next(&r) & 0xffff));
	c->db = pgconn_new(loop, cfg->database_url, "jobwheel-coordinator", &db_cbs, c);
	c->maint = pgconn_new(loop, cfg->database_url, "jobwheel-coordinator-maint", &maint_cbs, c);
	if (!c->db || !c->maint || delayed_init(c) < 0)
		return -1;
	maint_init(c);
	vacuum_init(c);
	cron_init(c);
	ev_timer_init(&c->lead_timer, on_lead_timer, LEAD_RETRY_S, LEAD_RETRY_S);
	return 0;
}

void coord_start(struct coord *c)
{
	log_info("coordinator %s starting (timer: %s)", c->id, timer_kind_name(c->timer_kind));
	pgconn_start(c->db);
	pgconn_start(c->maint);
	ev_timer_start(c->loop, &c->lead_timer);
}

static void deregistered(struct pgconn *db, PGresult *res, void *arg)
{
	struct coord *c = arg;

	ev_break(c->loop, EVBREAK_ALL);
}

void coord_stop(struct coord *c)
{
	const char *params[1] = { c->id };

	if (c->stopping) {
		ev_break(c->loop, EVBREAK_ALL);
		return;
	}
	c->stopping = true;
	sdnotify_stopping();
	log_info("coordinator %s stopping", c->id);
	become_follower(c, "shutting down");
	ev_timer_stop(c->loop, &c->lead_timer);
	if (pgconn_query(c->db, "SELECT jobwheel.deregister_coordinator($1)", 1, params, deregistered, c) < 0)
		ev_break(c->loop, EVBREAK_ALL);
}

void coord_free(struct coord *c)
{
	ev_timer_stop(c->loop, &c->lead_timer);
	delayed_free(c);
	cron_free(c);
	maint_stop(c);
	vacuum_stop(c);
	pgconn_free(c->db);
	pgconn_free(c->maint);
}
