/* SPDX-License-Identifier: MIT */
/* placeholder until written */
#include <stdio.h>
#include "cli.h"
int cmd_dlq(const struct cli_ctx *ctx) { (void)ctx; return 2; }
