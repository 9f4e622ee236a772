/* SPDX-License-Identifier: MIT */
/* systemd notifications (Type=notify); no-ops when not started by systemd
 * ($NOTIFY_SOCKET unset). */
#ifndef JW_SDNOTIFY_H
#define JW_SDNOTIFY_H

#include <stdint.h>

void sdnotify_ready(void);
void sdnotify_stopping(void);
void sdnotify_watchdog(void);
/* Interval at which WATCHDOG=1 must be sent, in ms; 0 when not enabled. */
int64_t sdnotify_watchdog_ms(void);
/* STATUS= line shown by systemctl status. */
void sdnotify_status(const char *status);

#endif
