/*
 * tests/fuzz/fuzz_conf.c - fuzz target for the configuration loader (conf/): bw_conf_load()
 * on a bulwark.yaml, and the clients file it reads beside it (clients.yaml, the list
 * `bulwarkctl client add` writes: YAML a device's owner may have had a hand in).
 *
 * The config is admin input, but the loader is a large parser of YAML, durations, sizes,
 * addresses, networks, names and schedules, and crashes in it are found cheaply here.
 * Input: the config; a NUL byte, if any, ends it and what follows is the clients file
 * (else there is none). Both are written to a private directory that also holds list.txt
 * and owns.txt, so a config may name real files (feeds/lists, guard owns-file).
 * Properties: a load gives a config and an empty error, or no config and an error message;
 * the config it gives is freed whole (LeakSanitizer); nothing else (ASan, UBSan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf.h"
#include "fuzz.h"

static char dir[64], conf_path[128], clients_path[128];

static void put(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(data, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

static void cleanup(void)
{
	static const char *const names[] = {"bulwark.yaml", "clients.yaml", "list.txt", "owns.txt"};
	char p[160];
	for (size_t i = 0; i < BW_ARRAY_LEN(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void init(void)
{
	char p[160];
	bw_log_set_level(BW_LOG_ERR);
	snprintf(dir, sizeof(dir), "/tmp/bw-fuzz-conf-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(conf_path, sizeof(conf_path), "%s/bulwark.yaml", dir);
	snprintf(clients_path, sizeof(clients_path), "%s/clients.yaml", dir);
	snprintf(p, sizeof(p), "%s/list.txt", dir);
	put(p, "bad.example\n", 12);
	snprintf(p, sizeof(p), "%s/owns.txt", dir);
	put(p, "example.org\nexample.net\n", 24);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		init();
	const uint8_t *nul = memchr(data, 0, size);
	size_t conf_len = nul ? (size_t)(nul - data) : size;
	put(conf_path, data, conf_len);
	if (nul)
		put(clients_path, nul + 1, size - conf_len - 1);
	else
		unlink(clients_path);

	struct bw_conf *conf = (struct bw_conf *)1;
	char err[512];
	memset(err, 'x', sizeof(err));
	int rc = bw_conf_load(conf_path, &conf, err, sizeof(err));
	CHECK(memchr(err, 0, sizeof(err)) != NULL);
	if (rc == 0) {
		CHECK(conf != NULL);
		CHECK(err[0] == 0);
		bw_conf_free(conf);
	} else {
		CHECK(rc < 0);
		CHECK(conf == NULL);
		CHECK(err[0] != 0);
	}
	return 0;
}
