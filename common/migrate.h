/* SPDX-License-Identifier: MIT */
/* Schema migrations: numbered SQL files embedded at build time, applied in order. */
#ifndef JW_MIGRATE_H
#define JW_MIGRATE_H

#include <stdio.h>

#include <libpq-fe.h>

struct migration {
	int version;
	const char *name;
	const char *sql;
};

/* Generated from migrations/NNNN_*.sql by migrations/embed.py, in order. */
extern const struct migration migrations[];
extern const int migrations_count;

/* Applies every pending migration, each in its own transaction, under a
 * session advisory lock so that hosts migrating at once take turns (the
 * later ones find nothing to do). Prints one line per applied migration to
 * `out`. Returns 0, or -1 after printing the server's error to `err`. */
int migrate_apply(PGconn *conn, FILE *out, FILE *err);

/* Prints `applied  0001_init.sql  TIME` / `pending  0002_...` lines.
 * Returns the number of pending migrations, or -1 on error. */
int migrate_status(PGconn *conn, FILE *out, FILE *err);

#endif
