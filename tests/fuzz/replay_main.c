/*
 * tests/fuzz/replay_main.c - runs a libFuzzer target over saved inputs without libFuzzer.
 *
 * Usage: replay_<target> PATH...   Each PATH is a file or a directory (walked
 * recursively); every regular file is passed once to LLVMFuzzerTestOneInput(). A PATH
 * that does not exist counts as an empty corpus (git keeps no empty directories).
 * Arguments starting with '-' (libFuzzer options) are ignored. A crash ends the process
 * with the sanitizer's report; otherwise it prints the count and exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static unsigned long ninputs;
static unsigned long nerrors;

static void run_file(const char *path, off_t size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		nerrors++;
		return;
	}
	/* a private allocation of the exact size, so ASan sees reads past the end */
	buf = malloc(size > 0 ? (size_t)size : 1);
	if (!buf || (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size)) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		nerrors++;
		free(buf);
		fclose(f);
		return;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	free(buf);
	ninputs++;
}

static void run_path(const char *path, unsigned depth)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		if (errno == ENOENT && depth == 0) {
			fprintf(stderr, "replay: %s: no such corpus, nothing to replay\n", path);
			return;
		}
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		nerrors++;
		return;
	}
	if (S_ISREG(st.st_mode)) {
		run_file(path, st.st_size);
		return;
	}
	if (!S_ISDIR(st.st_mode) || depth > 32)
		return;
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		nerrors++;
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') /* ".", "..", and hidden files such as .gitkeep */
			continue;
		size_t n = strlen(path) + 1 + strlen(e->d_name) + 1;
		char *sub = malloc(n);
		if (!sub) {
			nerrors++;
			break;
		}
		snprintf(sub, n, "%s/%s", path, e->d_name);
		run_path(sub, depth + 1);
		free(sub);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		run_path(argv[i], 0);
	}
	printf("fuzz replay: %lu inputs, 0 crashes%s\n", ninputs,
	       nerrors ? " (some inputs could not be read)" : "");
	return nerrors ? 1 : 0;
}
