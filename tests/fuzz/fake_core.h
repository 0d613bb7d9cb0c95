/* tests/fuzz/fake_core.h - the core as the connection fuzz targets (fuzz_doh_conn,
 * fuzz_tcp_conn) play it: each message is answered at once, held and answered later,
 * held and released unanswered, or dropped, as the target decides; tick() settles what
 * is held. Header-only: each target is one translation unit. */
#ifndef BW_FUZZ_FAKE_CORE_H
#define BW_FUZZ_FAKE_CORE_H

#include <stdbool.h>
#include <string.h>

#include "base/base.h"
#include "net/net.h"

#define MAX_HELD 512

struct held {
	struct bw_reply *r;
	bool answer;
	uint8_t msg[64];
	size_t len;
};

static struct held held[MAX_HELD];
static size_t nheld;

/* The first 64 bytes of the query with QR set: enough of an answer for a transport. */
static size_t make_answer(const uint8_t *q, size_t len, uint8_t *out)
{
	size_t n = BW_MIN(len, (size_t)64);
	memcpy(out, q, n);
	if (n > 2)
		out[2] |= 0x80; /* QR */
	return n;
}

/* act: 0 answer at once, 1 hold and answer at the next tick, 2 hold and release
 * unanswered, 3 drop (neither held nor answered). A full hold list answers at once. */
static void fake_core_act(struct bw_reply *r, const uint8_t *msg, size_t len, unsigned act)
{
	uint8_t ans[64];
	if ((act == 1 || act == 2) && nheld == MAX_HELD)
		act = 0;
	switch (act) {
	case 0:
		bw_reply_send(r, ans, make_answer(msg, len, ans));
		break;
	case 1:
	case 2:
		bw_reply_hold(r);
		held[nheld].r = r;
		held[nheld].answer = act == 1;
		held[nheld].len = make_answer(msg, len, held[nheld].msg);
		nheld++;
		break;
	default: /* dropped: neither held nor answered */
		break;
	}
}

/* The core answers (or lets go of) what it held; what this brings in waits. */
static void tick(void)
{
	static struct held now[MAX_HELD];
	size_t n = nheld;
	memcpy(now, held, n * sizeof(now[0]));
	nheld = 0;
	for (size_t i = 0; i < n; i++) {
		if (now[i].answer)
			bw_reply_answer(now[i].r, now[i].msg, now[i].len);
		else
			bw_reply_release(now[i].r);
	}
}

#endif
