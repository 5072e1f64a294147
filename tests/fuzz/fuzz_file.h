/* SPDX-License-Identifier: MIT */
/*
 * fuzz_file.h: for fuzz targets whose entry point reads a file (the
 * kubeconfig, the local configuration): one private temporary folder per
 * process, and the input rewritten into one file in it for every run.
 * Relative paths named inside the input resolve into that folder, where
 * nothing else exists. Standard input is replaced by /dev/null so that an
 * input naming /dev/stdin (or fd 0) cannot block a run. Not thread-safe:
 * libFuzzer and the replay main call the target from one thread.
 */
#ifndef WG_TESTS_FUZZ_FUZZ_FILE_H
#define WG_TESTS_FUZZ_FUZZ_FILE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[64];
static char fuzz_path[96];

static void fuzz_file_cleanup(void)
{
	if (fuzz_path[0])
		unlink(fuzz_path);
	if (fuzz_dir[0])
		rmdir(fuzz_dir);
}

/* The path of a file holding exactly data[0..size), or NULL when the temp
 * folder cannot be made (the run is then skipped). name is the file's base
 * name (its extension matters to some loaders). */
static inline const char *fuzz_file_write(const unsigned char *data, size_t size, const char *name)
{
	int fd;

	if (!fuzz_dir[0]) {
		const char *t = getenv("TMPDIR");
		int nul = open("/dev/null", O_RDONLY);

		if (nul != -1) {
			dup2(nul, 0);
			if (nul != 0)
				close(nul);
		}
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/wg-fuzz-XXXXXX", t && *t && strlen(t) < 40 ? t : "/tmp");
		if (!mkdtemp(fuzz_dir)) {
			fuzz_dir[0] = 0;
			return NULL;
		}
		snprintf(fuzz_path, sizeof(fuzz_path), "%s/%s", fuzz_dir, name);
		atexit(fuzz_file_cleanup);
	}
	fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return NULL;
	for (size_t off = 0; off < size;) {
		ssize_t w = write(fd, data + off, size - off);

		if (w <= 0) {
			close(fd);
			return NULL;
		}
		off += (size_t)w;
	}
	close(fd);
	return fuzz_path;
}

#endif
