/* SPDX-License-Identifier: MIT */
/*
 * fuzz-replay.c: a plain main() for a libFuzzer target, so gcc (and musl,
 * and qemu-user) can run a committed corpus as a regression test without
 * clang. Linked by mk/fuzz.mk with one tests/fuzz/<target>.c.
 *
 *   <target>-replay PATH...   each PATH is a file or a directory of files
 *
 * Feeds every file to LLVMFuzzerTestOneInput once, in a fresh heap buffer
 * of exactly the file's size (so overreads are real overreads). Prints
 * "<count> inputs" and exits 0; a bug shows up as a crash or an abort.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;

	if (!f || fstat(fileno(f), &st) == -1) {
		fprintf(stderr, "replay: cannot open %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	long count = 0;
	int err = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct dirent **names;
		struct stat st;
		int n;

		if (stat(argv[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
			err |= replay_file(argv[i]);
			count++;
			continue;
		}
		n = scandir(argv[i], &names, NULL, by_name);
		if (n < 0) {
			fprintf(stderr, "replay: cannot read %s\n", argv[i]);
			err = -1;
			continue;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];

			if (names[j]->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
				err |= replay_file(path);
				count++;
			}
			free(names[j]);
		}
		free(names);
	}
	printf("%ld inputs\n", count);
	return err ? 1 : 0;
}
