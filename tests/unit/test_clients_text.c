/*
 * tests/unit/test_clients_text.c - what `bulwark explain --client` says about a named
 * client (core/clients.c): which schedule item covers a moment, a schedule item as text,
 * the lookup by name, and the lookups by ClientID, MAC and network that explain shares
 * with the query path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <string.h>

#include "core/core.h"

#define DAY 1440u

static void test_schedule_at_and_text(void **state)
{
	(void)state;
	struct bw_client_schedule items[] = {
	    {.days = 0x1f, .from = 8 * 60, .to = 15 * 60, .profile = 1}, /* mon-fri school */
	    {.days = 0x7f, .from = 22 * 60, .to = 6 * 60, .profile = 2},  /* nights */
	};
	struct bw_client_conf cl = {.name = "kid", .profile = 0, .schedule = items,
				    .n_schedule = 2};
	assert_int_equal(bw_client_schedule_at(&cl, 0 * DAY + 8 * 60), 0);      /* mon 08:00 */
	assert_int_equal(bw_client_schedule_at(&cl, 0 * DAY + 15 * 60), -1);    /* mon 15:00 */
	assert_int_equal(bw_client_schedule_at(&cl, 0 * DAY + 14 * 60 + 59), 0);
	assert_int_equal(bw_client_schedule_at(&cl, 5 * DAY + 9 * 60), -1);     /* sat 09:00 */
	assert_int_equal(bw_client_schedule_at(&cl, 6 * DAY + 23 * 60), 1);     /* sun 23:00 */
	assert_int_equal(bw_client_schedule_at(&cl, 0 * DAY + 5 * 60), 1);      /* mon 05:00 */
	assert_int_equal(bw_client_profile_at(&cl, 0 * DAY + 5 * 60), 2);
	assert_int_equal(bw_client_profile_at(&cl, 5 * DAY + 9 * 60), 0);

	char t[64];
	bw_client_schedule_text(&items[0], t, sizeof(t));
	assert_string_equal(t, "mon-fri 08:00-15:00");
	bw_client_schedule_text(&items[1], t, sizeof(t));
	assert_string_equal(t, "daily 22:00-06:00");
	struct bw_client_schedule odd = {.days = 0x01 | 0x04 | 0x20 | 0x40, .from = 0, .to = DAY};
	bw_client_schedule_text(&odd, t, sizeof(t));
	assert_string_equal(t, "mon,wed,sat-sun 00:00-24:00");
}

static void test_lookups(void **state)
{
	(void)state;
	struct bw_cidr nets[2];
	assert_int_equal(bw_cidr_parse("192.168.1.0/24", 14, &nets[0]), 0);
	assert_int_equal(bw_cidr_parse("192.168.1.7", 11, &nets[1]), 0);
	char *ids[] = {"k3j5abcdef"};
	uint8_t macs[1][6] = {{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}};
	struct bw_client_conf list[] = {
	    {.name = "Amira's phone", .nets = &nets[0], .n_nets = 1, .ids = ids, .n_ids = 1,
	     .macs = macs, .n_macs = 1, .group = -1, .profile = -1},
	    {.name = "printer", .nets = &nets[1], .n_nets = 1, .group = -1, .profile = -1},
	};
	struct bw_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.clients.list = list;
	conf.clients.n = 2;
	assert_int_equal(bw_clients_by_name(&conf, "printer"), 1);
	assert_int_equal(bw_clients_by_name(&conf, "Amira's phone"), 0);
	assert_int_equal(bw_clients_by_name(&conf, "amira's phone"), -1); /* names are exact */

	struct bw_clients *c = NULL;
	assert_int_equal(bw_clients_build(&conf, &c), 0);
	assert_non_null(c);
	assert_int_equal(bw_clients_by_id(c, "k3j5abcdef", 10), 0);
	assert_int_equal(bw_clients_by_id(c, "k3j5", 4), -1);
	enum bw_client_by by;
	assert_int_equal(bw_clients_by_addr(c, macs[0], NULL, &by), 0);
	assert_int_equal(by, BW_CLIENT_BY_MAC);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	inet_pton(AF_INET, "192.168.1.7", &sin.sin_addr);
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&sin, &by), 1); /* /32 */
	assert_int_equal(by, BW_CLIENT_BY_NET);
	inet_pton(AF_INET, "192.168.1.8", &sin.sin_addr);
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&sin, &by), 0); /* /24 */
	inet_pton(AF_INET, "192.168.2.8", &sin.sin_addr);
	assert_int_equal(bw_clients_by_addr(c, NULL, (struct sockaddr *)&sin, &by), -1);
	assert_int_equal(by, BW_CLIENT_BY_NONE);
	bw_clients_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schedule_at_and_text),
	    cmocka_unit_test(test_lookups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
