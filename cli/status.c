/* SPDX-License-Identifier: MIT */
/* placeholder until written */
#include <stdio.h>
#include "cli.h"
int cmd_status(const struct cli_ctx *ctx) { (void)ctx; return 2; }
int cmd_job(const struct cli_ctx *ctx) { (void)ctx; return 2; }
