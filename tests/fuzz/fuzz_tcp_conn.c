/*
 * tests/fuzz/fuzz_tcp_conn.c - fuzz target for a DNS-over-TCP connection as the server runs
 * it (net/tcp.c, RFC 7766): the 2-byte length framing, pipelining, the in-flight cap that
 * pauses reading and resumes it, out-of-order answers, the client's half-close, and the
 * connection's lifetime while the core holds queries.
 *
 * The connection is a real socket: one end of a socketpair handed to the server with
 * bw_tcp_conn_adopt() (as if accepted), the client's bytes written into the other end a
 * piece at a time, the event loop run without waiting after each piece. (DoT is the same
 * framing over TLS; the TLS layer is OpenSSL's and not fuzzed here.)
 *
 * Input: byte 0 the mode: bit 0 the client reads nothing until the end, bit 1 it half-closes
 * (shutdown SHUT_WR) after its last byte; byte 1: the size of the pieces - 1; then the
 * client's bytes (length-prefixed queries). The core answers each query by the low bits of
 * its DNS ID: 0 at once, 1 later (held, answered after the next piece), 2 held and released
 * unanswered, 3 dropped. Properties: a query reaches the core as 1..65535 bytes; every
 * connection is freed (LeakSanitizer), nothing is used after it is freed (ASan).
 */
#include <event2/event.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "dns/dns.h"
#include "fake_core.h"
#include "fuzz.h"
#include "net/internal.h"

static struct event_base *base;

static void on_msg(struct bw_reply *r, const uint8_t *msg, size_t len, void *ctx)
{
	(void)ctx;
	CHECK(len >= 1 && len <= BW_DNS_MAXMSG);
	socklen_t plen;
	(void)bw_reply_peer(r, &plen);
	(void)r->ops->sni(r);
	fake_core_act(r, msg, len, len >= 2 ? msg[1] & 3 : 0);
}

static void settle(void)
{
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void drain(int fd)
{
	uint8_t buf[4096];
	settle();
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bw_conn_stats stats;

	if (!base) {
		bw_log_set_level(BW_LOG_ERR);
		base = event_base_new();
		CHECK(base != NULL);
	}
	if (size < 2)
		return 0;
	bool lazy = data[0] & 1, half_close = data[0] & 2;
	size_t piece = (size_t)data[1] + 1;
	data += 2;
	size -= 2;

	int lfd = socket(AF_INET, SOCK_STREAM, 0); /* the listener's: never accepts */
	CHECK(lfd >= 0);
	struct bw_tcp_opts o = {
	    .stream = {.max_conns = 4, .stats = &stats, .max_output = 4096},
	    .max_inflight = 4,
	};
	struct bw_tcp_server *s = bw_tcp_server_create(base, lfd, &o, on_msg, NULL);
	CHECK(s != NULL);
	bw_tcp_server_stop_accepting(s);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	struct sockaddr_in peer = {
	    .sin_family = AF_INET, .sin_port = htons(40000), .sin_addr.s_addr = htonl(0x7f000001)};
	CHECK(bw_tcp_conn_adopt(s, sv[0], (struct sockaddr *)&peer, sizeof(peer)) == 0);
	for (size_t at = 0; at < size; at += piece) {
		size_t n = BW_MIN(piece, size - at);
		(void)send(sv[1], data + at, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (lazy)
			settle();
		else
			drain(sv[1]);
		tick();
	}
	if (half_close)
		shutdown(sv[1], SHUT_WR);
	drain(sv[1]);
	while (nheld) {
		tick();
		drain(sv[1]);
	}
	bw_tcp_server_destroy(s);
	close(sv[1]);
	close(lfd);
	settle();
	return 0;
}
