/*
 * tests/fuzz/fuzz_spool.c - fuzz target for the query log's spool (telemetry/spool.c): the
 * record decoder, and the reader over a segment file of arbitrary bytes (a damaged disk, a
 * file that is not ours in the spool directory).
 *
 * The first byte picks: even = records decoded one after another from the rest; odd = the
 * rest written as a segment file and read back through the spool. Properties: a decoder
 * takes no more than it is given and leaves terminated strings of in-range lengths; the
 * reader ends (reads nothing more) and accounts every byte it did not read as skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "telemetry/internal.h"

static void check_record(const struct bw_tlm_record *r)
{
	CHECK(r->qname_len <= sizeof(r->qname));
	CHECK(memchr(r->profile, 0, sizeof(r->profile)));
	CHECK(memchr(r->v.feed_name, 0, sizeof(r->v.feed_name)));
	CHECK(memchr(r->v.category, 0, sizeof(r->v.category)));
	CHECK(memchr(r->v.rule, 0, sizeof(r->v.rule)));
	CHECK(memchr(r->client_name, 0, sizeof(r->client_name)));
}

static char dir[64];

static void remove_dir(void)
{
	rmdir(dir); /* empty: every input's segment was consumed */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct bw_tlm_record rec;
	if ((data[0] & 1) == 0) {
		size_t at = 1;
		while (at < size) {
			long k = bw_tlm_spool_decode(data + at, size - at, &rec);
			CHECK(k >= -1 && k <= (long)(size - at));
			if (k <= 0)
				break;
			check_record(&rec);
			at += (size_t)k;
		}
		return 0;
	}
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/bw-fuzz-spool-XXXXXX");
		CHECK(mkdtemp(dir) != NULL);
		atexit(remove_dir);
	}
	char path[128];
	snprintf(path, sizeof(path), "%s/0000000000000001.seg", dir);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite("bwspool1", 1, 8, f) == 8);
	CHECK(fwrite(data + 1, 1, size - 1, f) == size - 1);
	CHECK(fclose(f) == 0);
	char err[256];
	struct bw_tlm_spool *s = bw_tlm_spool_open(dir, 1 << 20, err, sizeof(err));
	CHECK(s != NULL);
	struct bw_tlm_record out[16];
	struct bw_tlm_spool_pos pos;
	size_t total = 0, n;
	int rounds = 0;
	while ((n = bw_tlm_spool_read(s, out, 16, &pos)) > 0) {
		for (size_t i = 0; i < n; i++)
			check_record(&out[i]);
		total += n;
		CHECK(++rounds <= (int)size + 1);
	}
	struct bw_tlm_spool_stats st;
	bw_tlm_spool_stats(s, &st);
	CHECK(st.read_old == total);
	CHECK(pos.seg == 2 && pos.off == 0); /* past the only segment */
	bw_tlm_spool_consumed(s, pos);
	CHECK(access(path, F_OK) != 0);
	bw_tlm_spool_close(s);
	return 0;
}
