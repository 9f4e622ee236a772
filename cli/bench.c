/* SPDX-License-Identifier: MIT */
/* placeholder until written */
#include <stdio.h>
#include "cli.h"
int cmd_bench(const struct cli_ctx *ctx) { (void)ctx; return 2; }
