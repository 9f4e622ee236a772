/* SPDX-License-Identifier: MIT */
/* Unit tests: the systemd notification protocol spoken without libsystemd:
 * datagrams reach a path socket and an abstract one, the watchdog interval
 * is read for this process only, and no socket means no-op. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdnotify.h"

/* Binds a datagram socket at name ("@..." abstract) and points
 * $NOTIFY_SOCKET at it. */
static int listen_at(const char *name)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	memcpy(addr.sun_path, name, len);
	if (name[0] == '@')
		addr.sun_path[0] = '\0';
	else
		unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	setenv("NOTIFY_SOCKET", name, 1);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char buf[300];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_path_socket(void **state)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/jw-sdnotify-%d.sock", (int)getpid());
	fd = listen_at(path);
	sdnotify_ready();
	expect_datagram(fd, "READY=1");
	sdnotify_status("leader");
	expect_datagram(fd, "STATUS=leader");
	sdnotify_watchdog();
	expect_datagram(fd, "WATCHDOG=1");
	sdnotify_stopping();
	expect_datagram(fd, "STOPPING=1");
	close(fd);
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@jw-sdnotify-%d", (int)getpid());
	fd = listen_at(name);
	sdnotify_ready();
	expect_datagram(fd, "READY=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_no_socket_is_a_no_op(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	sdnotify_ready(); /* must neither crash nor block */
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	sdnotify_ready();
	unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_interval(void **state)
{
	char pid[24];

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(sdnotify_watchdog_ms(), 0);
	setenv("WATCHDOG_USEC", "20000000", 1);
	assert_int_equal(sdnotify_watchdog_ms(), 20000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(sdnotify_watchdog_ms(), 20000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1); /* meant for another process */
	assert_int_equal(sdnotify_watchdog_ms(), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_no_socket_is_a_no_op),
		cmocka_unit_test(test_watchdog_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
