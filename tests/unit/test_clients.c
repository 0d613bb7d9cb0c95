/*
 * tests/unit/test_clients.c - named clients: the config (groups, derived profiles,
 * schedules, errors with file:line:col), the index (ClientIDs, MACs, longest network),
 * schedules at their boundaries with a fake clock, the TLS server name's ClientID and the
 * profile choice's order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"
#include "policy/policy.h"

static char dir[64];
static char path[96];

static int load(const char *text, const char *clients_file, struct bw_conf **out, char *err,
		size_t errlen)
{
	snprintf(dir, sizeof(dir), "/tmp/bw-test-clients-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/bulwark.yaml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	char cpath[128];
	snprintf(cpath, sizeof(cpath), "%s/clients.yaml", dir);
	if (clients_file) {
		f = fopen(cpath, "w");
		assert_non_null(f);
		fputs(clients_file, f);
		fclose(f);
	}
	int rc = bw_conf_load(path, out, err, errlen);
	unlink(cpath);
	unlink(path);
	rmdir(dir);
	return rc;
}

#define BASE                                                                                  \
	"policy:\n"                                                                           \
	"  profiles:\n"                                                                       \
	"    - { name: protected }\n"                                                         \
	"    - { name: family }\n"                                                            \
	"    - { name: private, feeds: none }\n"

static struct bw_conf *load_ok(const char *text, const char *clients_file)
{
	struct bw_conf *conf = NULL;
	char err[1024] = "";
	int rc = load(text, clients_file, &conf, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	return conf;
}

static int profile_index(const struct bw_conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->policy.n_profiles; i++)
		if (!strcmp(conf->policy.profiles[i].name, name))
			return (int)i;
	return -1;
}

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		fail_msg("bad address %s", s);
	return ss;
}

static void test_config_groups_and_derived_profiles(void **state)
{
	(void)state;
	struct bw_conf *conf = load_ok(BASE "clients:\n"
					    "  - name: staff\n"
					    "    profile: protected\n"
					    "    allowlist: [social.example]\n"
					    "  - name: \"Amira's phone\"\n"
					    "    group: staff\n"
					    "    match: [\"id:AbC-123\", \"mac:02:00:5E:10:00:01\"]\n"
					    "  - name: kids\n"
					    "    match: [10.0.0.0/24]\n"
					    "    schedule:\n"
					    "      - { profile: family, days: [mon-fri], from: \"08:00\", "
					    "to: \"15:00\" }\n",
					    "clients:\n  - { name: laptop, match: [\"id:zz9\"], profile: "
					    "private }\n");
	assert_int_equal(conf->clients.n, 4);
	assert_int_equal(conf->clients.n_inline, 3);
	const struct bw_client_conf *amira = &conf->clients.list[1];
	assert_string_equal(amira->ids[0], "abc-123");
	assert_int_equal(amira->macs[0][2], 0x5e);
	assert_int_equal(amira->group, 0);
	/* the group's allowlist makes one derived profile, shared by the group's members */
	int derived = profile_index(conf, "protected+staff");
	assert_true(derived >= 3);
	assert_int_equal(conf->clients.list[0].profile, derived);
	assert_int_equal(amira->profile, derived);
	const struct bw_profile_conf *p = &conf->policy.profiles[derived];
	assert_int_equal(p->n_allowlist, 1);
	assert_string_equal(p->allowlist[0], "social.example");
	assert_true(p->all_feeds);
	/* kids: no profile outside the schedule */
	const struct bw_client_conf *kids = &conf->clients.list[2];
	assert_int_equal(kids->profile, -1);
	assert_int_equal(kids->n_schedule, 1);
	assert_int_equal(kids->schedule[0].days, 0x1f);
	assert_int_equal(kids->schedule[0].from, 8 * 60);
	assert_int_equal(kids->schedule[0].to, 15 * 60);
	assert_int_equal(conf->clients.list[3].profile, profile_index(conf, "private"));
	bw_conf_free(conf);
}

static void expect_error(const char *text, const char *clients_file, const char *want)
{
	struct bw_conf *conf = NULL;
	char err[1024] = "";
	int rc = load(text, clients_file, &conf, err, sizeof(err));
	assert_int_not_equal(rc, 0);
	assert_null(conf);
	if (!strstr(err, want))
		fail_msg("want '%s' in: %s", want, err);
}

static void test_config_errors(void **state)
{
	(void)state;
	expect_error(BASE "clients:\n  - { name: a, match: [\"id:-x\"] }\n", NULL,
		     "bulwark.yaml:7:24: client 'a': invalid ClientID '-x'");
	expect_error(BASE "clients:\n  - { name: a, match: [\"mac:02:00\"] }\n", NULL,
		     "invalid MAC address '02:00'");
	expect_error(BASE "clients:\n  - { name: a, match: [10.0.0.300] }\n", NULL,
		     "'10.0.0.300' is not an address");
	expect_error(BASE "clients:\n  - { name: a, match: [10.0.0.1], profile: nosuch }\n", NULL,
		     "bulwark.yaml:7:44: unknown profile 'nosuch'");
	expect_error(BASE "clients:\n  - { name: a, match: [10.0.0.1], group: b }\n", NULL,
		     "client 'a': no client or group named 'b'");
	expect_error(BASE "clients:\n  - { name: a, group: b, profile: family }\n"
			  "  - { name: b, group: a, profile: family }\n",
		     NULL, "its groups form a loop");
	expect_error(BASE "clients:\n  - { name: a, match: [10.0.0.1] }\n",
		     "clients:\n  - { name: a, match: [10.0.0.2] }\n",
		     "clients.yaml:2:5: duplicate client name 'a'");
	expect_error(BASE "clients:\n  - { name: a, match: [\"id:same\"] }\n",
		     "clients:\n  - { name: b, match: [\"id:SAME\"] }\n",
		     "clients.yaml:2:5: client 'b': ClientID 'same' is already client 'a''s");
	expect_error(BASE "clients:\n  - { name: a, match: [10.0.0.1], allowlist: [x.example] }\n",
		     NULL, "an allowlist or feeds needs a profile");
	expect_error(BASE "clients:\n  - { name: a, match: [10.0.0.1], feeds: [nosuch] }\n", NULL,
		     "no feed named 'nosuch'");
	expect_error(BASE "clients:\n  - name: a\n    schedule: [{ profile: family, from: \"8\" }]\n",
		     NULL, "from '8' is not a time of day");
	expect_error(BASE "clients:\n  - name: a\n    schedule: [{ profile: family, days: [moon] }]\n",
		     NULL, "'moon' is not a day");
	expect_error(BASE "clients:\n  - { name: \"a/b\", match: [10.0.0.1] }\n", NULL,
		     "client name 'a/b' must not hold");
	expect_error(BASE "clients:\n  - { name: a }\n", NULL, "neither matches queries");
	expect_error(BASE "clients:\n  - { name: a, match: [10.0.0.1] }\n", "clients: [1, 2]\n",
		     "expected a mapping for each client");
	expect_error(BASE "clients-file: nosuch/clients.yaml\n", NULL,
		     "cannot open the clients file");
}

static void test_index(void **state)
{
	(void)state;
	struct bw_conf *conf = load_ok(BASE "clients:\n"
					    "  - { name: lan, match: [10.0.0.0/8], profile: family }\n"
					    "  - { name: office, match: [10.1.0.0/16], profile: private }\n"
					    "  - { name: printer, match: [10.1.2.3], profile: protected }\n"
					    "  - { name: v6, match: [\"2001:db8:1::/48\"], profile: family }\n"
					    "  - { name: phone, match: [\"id:k3j5\", \"mac:02:00:5e:10:00:01\"], "
					    "profile: family }\n",
					    NULL);
	struct bw_clients *c = NULL;
	assert_int_equal(bw_clients_build(conf, &c), 0);
	assert_non_null(c);
	assert_true(bw_clients_have_ids(c));
	enum bw_client_by by;
	struct sockaddr_storage a;
	a = addr("10.9.9.9");
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&a, &by), 0);
	assert_int_equal(by, BW_CLIENT_BY_NET);
	a = addr("10.1.200.1");
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&a, &by), 1);
	a = addr("10.1.2.3");
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&a, &by), 2);
	a = addr("::ffff:10.1.2.3"); /* a v4-mapped address is the v4 one */
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&a, &by), 2);
	a = addr("2001:db8:1:ff::1");
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&a, &by), 3);
	a = addr("2001:db8:2::1");
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&a, &by), -1);
	assert_int_equal(by, BW_CLIENT_BY_NONE);
	a = addr("192.0.2.1");
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&a, &by), -1);
	/* the MAC comes first: more specific than any network */
	static const uint8_t mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
	static const uint8_t other[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x02};
	a = addr("10.1.2.3");
	assert_int_equal(bw_clients_by_addr(c, mac, (struct sockaddr *)&a, &by), 4);
	assert_int_equal(by, BW_CLIENT_BY_MAC);
	assert_int_equal(bw_clients_by_addr(c, other, (struct sockaddr *)&a, &by), 2);
	assert_int_equal(bw_clients_by_id(c, "k3j5", 4), 4);
	assert_int_equal(bw_clients_by_id(c, "k3j6", 4), -1);
	assert_int_equal(bw_clients_by_id(c, "k3j", 3), -1);
	assert_int_equal(bw_clients_by_id(c, "", 0), -1);
	bw_clients_free(c);
	bw_conf_free(conf);
	/* no clients: no index, every lookup says none */
	conf = load_ok(BASE, NULL);
	assert_int_equal(bw_clients_build(conf, &c), 0);
	assert_null(c);
	a = addr("10.1.2.3");
	assert_int_equal(bw_clients_by_addr(NULL, mac, (struct sockaddr *)&a, &by), -1);
	assert_int_equal(bw_clients_by_id(NULL, "k3j5", 4), -1);
	bw_conf_free(conf);
}

#define MIN(d, h, m) ((d) * 1440 + (h) * 60 + (m)) /* d: 0 = Monday */

static void test_schedule_boundaries(void **state)
{
	(void)state;
	struct bw_conf *conf = load_ok(
	    BASE "clients:\n"
		 "  - name: kid\n"
		 "    match: [10.0.0.7]\n"
		 "    profile: protected\n"
		 "    schedule:\n"
		 "      - { profile: family, days: weekdays, from: \"08:00\", to: \"15:00\" }\n"
		 "      - { profile: private, days: [fri, sat], from: \"22:00\", to: \"06:30\" }\n",
	    NULL);
	const struct bw_client_conf *k = &conf->clients.list[0];
	int prot = profile_index(conf, "protected"), fam = profile_index(conf, "family"),
	    priv = profile_index(conf, "private");
	assert_int_equal(bw_client_profile_at(k, MIN(0, 7, 59)), prot);
	assert_int_equal(bw_client_profile_at(k, MIN(0, 8, 0)), fam);   /* from: included */
	assert_int_equal(bw_client_profile_at(k, MIN(4, 14, 59)), fam);
	assert_int_equal(bw_client_profile_at(k, MIN(4, 15, 0)), prot); /* to: excluded */
	assert_int_equal(bw_client_profile_at(k, MIN(5, 9, 0)), prot);  /* Saturday */
	/* overnight: Friday 22:00 to Saturday 06:30, Saturday 22:00 to Sunday 06:30 */
	assert_int_equal(bw_client_profile_at(k, MIN(4, 21, 59)), prot);
	assert_int_equal(bw_client_profile_at(k, MIN(4, 22, 0)), priv);
	assert_int_equal(bw_client_profile_at(k, MIN(5, 6, 29)), priv);
	assert_int_equal(bw_client_profile_at(k, MIN(5, 6, 30)), prot);
	assert_int_equal(bw_client_profile_at(k, MIN(6, 3, 0)), priv);  /* Sunday night */
	assert_int_equal(bw_client_profile_at(k, MIN(0, 3, 0)), prot);  /* Monday: no */
	assert_int_equal(bw_client_profile_at(k, MIN(3, 23, 0)), prot); /* Thursday: no */
	unsigned now = bw_clients_minute_now();
	assert_true(now < 7 * 1440);
	bw_conf_free(conf);
}

static void test_sni_client_id(void **state)
{
	(void)state;
	FILE *f = fopen("/tmp/bw-test-clients.pem", "w");
	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
	struct bw_conf *conf = load_ok(
	    "server:\n"
	    "  listen:\n"
	    "    - { address: 127.0.0.1, port: 8853, transport: dot, tls-cert: "
	    "/tmp/bw-test-clients.pem,\n"
	    "        tls-key: /tmp/bw-test-clients.pem, tls-name: dns.example,\n"
	    "        sni: { family.dns.example: family }, client-id: required }\n"
	    "    - { address: 127.0.0.1, port: 53 }\n" BASE,
	    NULL);
	unlink("/tmp/bw-test-clients.pem");
	assert_true(conf->server.listen[0].client_id_required);
	assert_false(conf->server.listen[1].client_id_required);
	const char *id;
	size_t len;
	assert_true(bw_access_sni_client_id(conf, 0, "K3J5.Dns.Example", &id, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(id, "K3J5", 4);
	assert_true(bw_access_sni_client_id(conf, 0, "k3j5.dns.example.", &id, &len));
	assert_false(bw_access_sni_client_id(conf, 0, "family.dns.example", &id, &len));
	assert_false(bw_access_sni_client_id(conf, 0, "dns.example", &id, &len));
	assert_false(bw_access_sni_client_id(conf, 0, "a.b.dns.example", &id, &len));
	assert_false(bw_access_sni_client_id(conf, 0, "k3j5.other.example", &id, &len));
	assert_false(bw_access_sni_client_id(conf, 0, ".dns.example", &id, &len));
	assert_false(bw_access_sni_client_id(conf, 1, "k3j5.dns.example", &id, &len));
	assert_false(bw_access_sni_client_id(conf, 9, "k3j5.dns.example", &id, &len));
	bw_conf_free(conf);
}

static void test_profile_choice_order(void **state)
{
	(void)state;
	struct bw_conf *conf = load_ok(
	    "policy:\n"
	    "  profiles:\n"
	    "    - { name: protected }\n"
	    "    - { name: family, clients: [10.0.0.0/8] }\n"
	    "    - { name: private, feeds: none }\n"
	    "  default-profile: protected\n"
	    "clients:\n"
	    "  - { name: boss, match: [10.0.0.1], profile: private }\n"
	    "  - { name: guest, match: [10.0.0.2] }\n",
	    NULL);
	struct bw_policy *p = NULL;
	assert_int_equal(bw_policy_build(conf, NULL, 1, &p), 0);
	struct sockaddr_storage a = addr("10.0.0.2");
	/* a client without a profile: the usual choice (the profiles' networks) */
	struct bw_profile_ask ask = {.client = 1, .listener = -1, .peer = (struct sockaddr *)&a};
	assert_int_equal(bw_choose_profile(p, conf, &ask), 1);
	/* a client's profile wins over the networks */
	a = addr("10.0.0.1");
	ask.client = 0;
	assert_int_equal(bw_choose_profile(p, conf, &ask), 2);
	/* nobody: the default */
	a = addr("192.0.2.1");
	ask.client = -1;
	assert_int_equal(bw_choose_profile(p, conf, &ask), 0);
	bw_policy_free(p);
	bw_conf_free(conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_groups_and_derived_profiles),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_index),
	    cmocka_unit_test(test_schedule_boundaries),
	    cmocka_unit_test(test_sni_client_id),
	    cmocka_unit_test(test_profile_choice_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
