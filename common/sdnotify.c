/* SPDX-License-Identifier: MIT */
/* systemd notifications (Type=notify): the protocol is one datagram to the
 * AF_UNIX socket named by $NOTIFY_SOCKET ("@" for the abstract namespace),
 * so it is spoken here rather than by linking libsystemd, which with its
 * compression and crypto libraries costs every process about 1 MiB of
 * resident memory. Without $NOTIFY_SOCKET every call is a no-op. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = path ? strlen(path) : 0;
	int fd;

	if (len == 0 || len >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@'))
		return;
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	/* Best effort, as sd_notify: a lost notification is systemd's to time out. */
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&addr,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	close(fd);
}

void sdnotify_ready(void)
{
	notify("READY=1");
}

void sdnotify_stopping(void)
{
	notify("STOPPING=1");
}

void sdnotify_watchdog(void)
{
	notify("WATCHDOG=1");
}

int64_t sdnotify_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	long long v = usec ? atoll(usec) : 0;

	/* WATCHDOG_PID names the process the watchdog is for; a child that
	 * inherited the environment is not it. */
	if (v <= 0 || (pid && atol(pid) != (long)getpid()))
		return 0;
	return (int64_t)(v / 1000);
}

void sdnotify_status(const char *status)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	notify(msg);
}
