/* SPDX-License-Identifier: MIT */
/* Corpus replay for builds without libFuzzer: runs the target on each named file and directory entry. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Corpus entries are small; anything bigger is a mistake, not a test. */
#define MAX_FILE (1 << 20)

/* Reads all of fd into buf (size bytes); the length read, or -errno. */
static ssize_t read_all(int fd, uint8_t *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Runs the target on one file; 0, or -errno. */
static int run_file(const char *path)
{
	struct stat st;
	uint8_t *buf = NULL;
	ssize_t n = -ENOMEM;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		n = -errno;
	else if (st.st_size > MAX_FILE)
		n = -EFBIG;
	else if ((buf = malloc((size_t)st.st_size + 1))) /* +1: empty files get a buffer too */
		n = read_all(fd, buf, (size_t)st.st_size);
	if (n >= 0)
		LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	close(fd);
	return n < 0 ? (int)n : 0;
}

/* Runs every regular file directly inside dir; how many, or -1 after saying why. */
static int run_dir(const char *dir)
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	int count = 0, r = 0;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while (r == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			r = -ENAMETOOLONG;
		else if (stat(path, &st) < 0)
			r = -errno;
		else if (S_ISREG(st.st_mode) && (r = run_file(path)) == 0)
			count++;
		if (r < 0)
			fprintf(stderr, "%s/%s: %s\n", dir, de->d_name, strerror(-r));
	}
	closedir(d);
	return r < 0 ? -1 : count;
}

int main(int argc, char **argv)
{
	int total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int r;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			r = run_dir(argv[i]);
		} else if ((r = run_file(argv[i])) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
		} else {
			r = 1;
		}
		if (r < 0)
			return 1;
		total += r;
	}
	if (total == 0) {
		fprintf(stderr, "no inputs found: an empty corpus tests nothing\n");
		return 1;
	}
	printf("%d inputs ran\n", total);
	return 0;
}
