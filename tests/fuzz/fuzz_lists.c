/*
 * tests/fuzz/fuzz_lists.c - the text list rule parsers (domains, hosts, wildcard, adblock)
 * on arbitrary bytes.
 *
 * Every rule handed to the sink must be a QNAME or WILDCARD trigger on a well-formed,
 * lower-cased wire name of exactly name_len bytes, with a list action (NXDOMAIN, or
 * PASSTHRU from an adblock exception), the list TTL and a line number within the input;
 * the report must add up.
 */
#include "fuzz.h"
#include "policy/rules.h"

typedef int (*parse_fn)(const char *buf, size_t len, const char *label, bw_rule_sink sink,
			void *ctx, struct bw_parse_report *rep);

struct state {
	size_t rules;
	unsigned long max_line; /* number of lines in the input: 1 + newlines */
	bool adblock;		/* PASSTHRU and exact-only (QNAME without WILDCARD) rules allowed */
	uint8_t last[255];	/* the name of the last QNAME rule (other formats: pairs) */
	size_t last_len;
};

static bool name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int check_rule(void *ctx, const struct bw_rule *r)
{
	struct state *st = ctx;
	size_t pos = 0;

	CHECK(r->trigger == BW_TRIG_QNAME || r->trigger == BW_TRIG_WILDCARD);
	CHECK(r->action == BW_ACT_NXDOMAIN || (st->adblock && r->action == BW_ACT_PASSTHRU));
	CHECK(r->ttl == 300);
	CHECK(r->line >= 1 && r->line <= st->max_line);
	CHECK(r->name != NULL && r->name_len >= 2 && r->name_len <= 255);
	CHECK(r->target == NULL && r->rrs == NULL && r->n_rrs == 0);
	CHECK(r->ref == NULL && r->title == NULL && !r->nsdname_wildcard);
	while (r->name[pos] != 0) {
		uint8_t l = r->name[pos];
		CHECK(l >= 1 && l <= 63 && pos + 1u + l < r->name_len);
		for (size_t i = pos + 1; i <= pos + l; i++)
			CHECK(name_char(r->name[i]));
		pos += 1u + l;
	}
	CHECK(pos == r->name_len - 1);
	if (!st->adblock) { /* every name: QNAME then WILDCARD, same name */
		CHECK(r->trigger == (st->rules % 2 ? BW_TRIG_WILDCARD : BW_TRIG_QNAME));
		if (r->trigger == BW_TRIG_WILDCARD)
			CHECK(r->name_len == st->last_len &&
			      memcmp(r->name, st->last, r->name_len) == 0);
	}
	memcpy(st->last, r->name, r->name_len);
	st->last_len = r->name_len;
	st->rules++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const parse_fn fns[] = {bw_parse_domains, bw_parse_hosts, bw_parse_wildcard,
				       bw_parse_adblock};
	static bool quiet;
	const char *buf = (const char *)data;
	unsigned long lines = 1;

	if (!quiet) {
		bw_log_set_level(BW_LOG_ERR);
		quiet = true;
	}
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	for (size_t k = 0; k < BW_ARRAY_LEN(fns); k++) {
		bool one_name = fns[k] == bw_parse_domains || fns[k] == bw_parse_wildcard;
		struct state st = {.max_line = lines, .adblock = fns[k] == bw_parse_adblock};
		struct bw_parse_report rep;

		CHECK(fns[k](buf, size, "fuzz", check_rule, &st, &rep) == 0);
		CHECK(rep.rules == st.rules);
		CHECK(rep.units <= lines);
		CHECK(size == 0 || rep.units >= 1 || (size == 3 && data[0] == 0xef));
		CHECK(rep.bad <= rep.units);
		CHECK(!one_name || rep.bad + rep.skipped <= rep.units);
		CHECK(st.adblock || rep.rules % 2 == 0);
		CHECK(rep.n_errors <= 5 && rep.n_errors <= rep.bad);
		for (unsigned e = 0; e < rep.n_errors; e++)
			CHECK(memchr(rep.first_errors[e], '\0', sizeof(rep.first_errors[e])) !=
			      NULL);
		CHECK(!rep.broken);
	}
	return 0;
}
