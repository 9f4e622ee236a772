/* SPDX-License-Identifier: MIT */
/* systemd notifications (Type=notify), no-ops without libsystemd. */
#include "jw_build_config.h"
#include "sdnotify.h"

#if JW_HAVE_SYSTEMD
#include <stdio.h>
#include <systemd/sd-daemon.h>

void sdnotify_ready(void)
{
	sd_notify(0, "READY=1");
}

void sdnotify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void sdnotify_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}

int64_t sdnotify_watchdog_ms(void)
{
	uint64_t usec = 0;
	return sd_watchdog_enabled(0, &usec) > 0 ? (int64_t)(usec / 1000) : 0;
}

void sdnotify_status(const char *status)
{
	sd_notifyf(0, "STATUS=%s", status);
}
#else
void sdnotify_ready(void)
{
}

void sdnotify_stopping(void)
{
}

void sdnotify_watchdog(void)
{
}

int64_t sdnotify_watchdog_ms(void)
{
	return 0;
}

void sdnotify_status(const char *status)
{
	(void)status;
}
#endif
