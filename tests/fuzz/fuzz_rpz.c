/*
 * tests/fuzz/fuzz_rpz.c - the RPZ zone parser (bw_parse_rpz) on arbitrary bytes.
 *
 * Every rule handed to the sink must be internally consistent: a known trigger and a
 * blocking action; QNAME / WILDCARD / NSDNAME triggers carry a well-formed, lower-cased
 * wire name of exactly name_len bytes; IP triggers a canonical CIDR (family, prefix length
 * in range, no bit set after it); REDIRECT a lower-cased wire target; LOCAL_DATA exactly one
 * readable record that is neither CNAME nor SOA; a line within the input. The report must
 * add up.
 */
#include <sys/socket.h>

#include "fuzz.h"
#include "policy/rules.h"

struct state {
	size_t rules;
	unsigned long max_line; /* lines in the input: 1 + newlines */
	unsigned sum;		/* touches every rdata byte (ASan checks the reads) */
};

static void check_name(const uint8_t *name, size_t len)
{
	size_t pos = 0;

	CHECK(name != NULL && len >= 1 && len <= 255);
	while (name[pos] != 0) {
		uint8_t l = name[pos];
		CHECK(l <= 63 && pos + 1u + l < len);
		for (size_t i = pos + 1; i <= pos + l; i++)
			CHECK(!(name[i] >= 'A' && name[i] <= 'Z'));
		pos += 1u + l;
	}
	CHECK(pos == len - 1);
}

static int check_rule(void *ctx, const struct bw_rule *r)
{
	struct state *st = ctx;

	CHECK(r->action > BW_ACT_ALLOW && r->action <= BW_ACT_PASSTHRU);
	CHECK(r->line >= 1 && r->line <= st->max_line);
	CHECK(r->ref == NULL && r->title == NULL);
	switch (r->trigger) {
	case BW_TRIG_QNAME:
	case BW_TRIG_WILDCARD:
	case BW_TRIG_NSDNAME:
		check_name(r->name, r->name_len);
		CHECK(r->trigger == BW_TRIG_NSDNAME || !r->nsdname_wildcard);
		CHECK(r->trigger != BW_TRIG_QNAME || r->name_len > 1); /* root only as "*." */
		break;
	case BW_TRIG_CLIENT_IP:
	case BW_TRIG_RESPONSE_IP:
	case BW_TRIG_NSIP: {
		unsigned bits = r->net.family == AF_INET ? 32 : 128;
		CHECK(r->net.family == AF_INET || r->net.family == AF_INET6);
		CHECK(r->net.prefix >= 1 && r->net.prefix <= bits);
		for (unsigned b = r->net.prefix; b < bits; b++)
			CHECK(!(r->net.addr[b / 8] & (0x80u >> (b % 8))));
		CHECK(r->name == NULL && !r->nsdname_wildcard);
		break;
	}
	default:
		CHECK(0);
	}
	if (r->action == BW_ACT_REDIRECT) {
		check_name(r->target, r->target_len);
		CHECK(r->target_len > 1 || r->target_wildcard);
	} else {
		CHECK(r->target == NULL && !r->target_wildcard);
	}
	if (r->action == BW_ACT_LOCAL_DATA) {
		CHECK(r->n_rrs == 1 && r->rrs != NULL);
		CHECK(r->rrs[0].type != 5 && r->rrs[0].type != 6);
		CHECK(r->rrs[0].ttl == r->ttl);
		CHECK(r->rrs[0].rdlen == 0 || r->rrs[0].rdata != NULL);
		for (size_t i = 0; i < r->rrs[0].rdlen; i++)
			st->sum += r->rrs[0].rdata[i];
	} else {
		CHECK(r->n_rrs == 0 && r->rrs == NULL);
	}
	st->rules++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state st = {.max_line = 1};
	struct bw_parse_report rep;

	for (size_t i = 0; i < size; i++)
		st.max_line += data[i] == '\n';
	CHECK(bw_parse_rpz((const char *)data, size, NULL, check_rule, &st, &rep) == 0);
	CHECK(rep.rules == st.rules);
	CHECK(rep.n_errors <= 5 && rep.n_errors <= rep.bad);
	CHECK(rep.units <= st.max_line);
	CHECK(rep.bad <= 2 * (size_t)st.max_line + 2);
	return 0;
}
