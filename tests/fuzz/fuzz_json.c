/*
 * tests/fuzz/fuzz_json.c - the STIX 2.1 and MISP parsers on arbitrary bytes.
 *
 * Every rule handed to the sink must be well formed: an NXDOMAIN action; a QNAME or
 * WILDCARD rule with a lower-cased wire name of [a-z0-9_-] labels; a RESPONSE_IP rule with
 * an IPv4 or IPv6 network whose host bits are clear. The report must agree with the sink.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "policy/rules.h"

struct count {
	size_t rules;
};

static void check_name(const uint8_t *name, size_t len)
{
	size_t pos = 0;

	CHECK(name != NULL && len >= 2 && len <= 255);
	while (name[pos] != 0) {
		uint8_t l = name[pos];

		CHECK(l <= 63 && pos + 1u + l < len);
		for (size_t i = pos + 1; i <= pos + l; i++) {
			uint8_t c = name[i];

			CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			      c == '_');
		}
		pos += 1u + l;
	}
	CHECK(pos == len - 1);
}

static void check_net(const struct bw_cidr *net)
{
	unsigned max = net->family == AF_INET ? 32 : 128;

	CHECK(net->family == AF_INET || net->family == AF_INET6);
	CHECK(net->prefix <= max);
	for (unsigned bit = net->prefix; bit < max; bit++)
		CHECK(!(net->addr[bit / 8] & (0x80u >> (bit % 8))));
}

static int sink(void *ctx, const struct bw_rule *r)
{
	struct count *c = ctx;

	CHECK(r->action == BW_ACT_NXDOMAIN);
	CHECK(r->line == 0);
	switch (r->trigger) {
	case BW_TRIG_QNAME:
	case BW_TRIG_WILDCARD:
		check_name(r->name, r->name_len);
		break;
	case BW_TRIG_RESPONSE_IP:
		check_net(&r->net);
		break;
	default:
		CHECK(false);
	}
	if (r->ref)
		CHECK(strlen(r->ref) < (size_t)1 << 30);
	if (r->title)
		CHECK(strlen(r->title) < (size_t)1 << 30);
	c->rules++;
	return 0;
}

static void check_report(const struct bw_parse_report *rep, const struct count *c)
{
	CHECK(rep->rules == c->rules);
	CHECK(rep->n_errors <= 5 && rep->n_errors <= rep->bad);
	if (rep->broken)
		CHECK(rep->rules == 0 && rep->units == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_parse_report rep;
	struct count c = {0};

	CHECK(bw_parse_stix((const char *)data, size, NULL, 1780000000, sink, &c, &rep) == 0);
	check_report(&rep, &c);
	c.rules = 0;
	CHECK(bw_parse_misp((const char *)data, size, NULL, size % 2, sink, &c, &rep) == 0);
	check_report(&rep, &c);
	return 0;
}
