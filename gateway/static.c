/* SPDX-License-Identifier: MIT */
/* Static files of the dashboard: a flat directory, read on each request
 * (a handful of small files; the page cache does the rest). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "static.h"

#define STATIC_MAX (4 * 1024 * 1024)

static const char *content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	if (!strcmp(dot, ".png"))
		return "image/png";
	if (!strcmp(dot, ".ico"))
		return "image/x-icon";
	return "application/octet-stream";
}

static void not_found(struct http_request *req)
{
	static const char body[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such file\"}}";
	http_respond(req, 404, "application/json", body, sizeof(body) - 1, NULL);
}

void static_serve(const char *web_root, struct http_request *req)
{
	const char *name = strcmp(req->path, "/") ? req->path + 1 : "index.html";
	char path[4096], *buf = NULL;
	struct stat st;
	int fd = -1;
	ssize_t got = 0;

	/* One plain file name: no '/', no leading dot (so no "..", no .git). */
	if (!name[0] || name[0] == '.' || strchr(name, '/') ||
	    snprintf(path, sizeof(path), "%s/%s", web_root, name) >= (int)sizeof(path)) {
		not_found(req);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX ||
	    !(buf = malloc((size_t)st.st_size + 1))) {
		if (fd >= 0)
			close(fd);
		not_found(req);
		return;
	}
	while (got < st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)(st.st_size - got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	http_respond(req, 200, content_type(name), buf, (size_t)got,
		     "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
		     "Content-Security-Policy: default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
		     " frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n");
	free(buf);
}
