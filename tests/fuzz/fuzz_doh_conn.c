/*
 * tests/fuzz/fuzz_doh_conn.c - fuzz target for a DoH connection as the server runs it
 * (net/doh.c): HTTP/2 frames through nghttp2 and Bulwark's own callbacks (headers, data,
 * stream close, resets, the stream cap), HTTP/1.1 pipelining, the answers and the streams'
 * lifetimes while the core holds requests.
 *
 * No socket and no TLS: bw_doh_conn_adopt() gives the server one end of a bufferevent
 * pair, the client's bytes are written into the other end, a piece at a time, and reach
 * the connection through its real read callback (run by the event loop, which runs
 * without waiting after each piece); what the server writes is drained (or,
 * to test back-pressure, left unread until the end).
 *
 * Input: byte 0 the mode: bit 0 HTTP/1.1 (else HTTP/2), bit 1 no client preface prepended
 * (HTTP/2; else "PRI * HTTP/2.0..." comes first), bit 2 the client reads nothing until the
 * end; byte 1: the size of the pieces - 1; then the client's bytes. The core answers each
 * request by the low bits of its DNS ID: 0 at once, 1 later (held, answered after the next
 * piece), 2 held and released unanswered, 3 dropped. Properties: a request reaches the
 * core as a DNS message of 12..65535 bytes with a configured path; every stream and
 * buffer is freed (LeakSanitizer), nothing is used after it is freed (ASan).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
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
static const char *const paths[] = {"/dns-query", "/family"};

static void on_msg(struct bw_reply *r, const uint8_t *msg, size_t len, void *ctx)
{
	(void)ctx;
	CHECK(len >= BW_DNS_HDR && len <= BW_DNS_MAXMSG);
	const char *path = r->ops->doh_path(r);
	CHECK(path == paths[0] || path == paths[1]);
	socklen_t plen;
	(void)bw_reply_peer(r, &plen);
	(void)r->ops->sni(r);
	(void)r->ops->client_id(r);
	fake_core_act(r, msg, len, msg[1] & 3);
}

/* A pair's callbacks are deferred (libevent forces it): run them until none is left. */
static void settle(void)
{
	for (int i = 0; i < 64; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) == 0)
			break;
	}
}

static void drain(struct bufferevent *client)
{
	settle();
	struct evbuffer *in = bufferevent_get_input(client);
	evbuffer_drain(in, evbuffer_get_length(in));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static struct bw_conn_stats stats;

	if (!base) {
		bw_log_set_level(BW_LOG_ERR);
		base = event_base_new();
		CHECK(base != NULL);
	}
	if (size < 2)
		return 0;
	bool h2 = !(data[0] & 1), preface_given = data[0] & 2, lazy = data[0] & 4;
	size_t piece = (size_t)data[1] + 1;
	data += 2;
	size -= 2;

	int fd = socket(AF_INET, SOCK_STREAM, 0); /* the listener's: never accepts */
	CHECK(fd >= 0);
	struct bw_doh_opts o = {
	    .stream = {.max_conns = 4, .stats = &stats, .max_output = 8192},
	    .max_streams = 8,
	    .paths = paths,
	    .n_paths = BW_ARRAY_LEN(paths),
	};
	struct bw_doh_server *s = bw_doh_server_create(base, fd, &o, on_msg, NULL);
	CHECK(s != NULL);
	bw_doh_server_stop_accepting(s);
	struct bufferevent *pair[2];
	CHECK(bufferevent_pair_new(base, 0, pair) == 0);
	struct bufferevent *client = pair[1];
	if (!lazy)
		bufferevent_enable(client, EV_READ);
	struct sockaddr_in peer = {
	    .sin_family = AF_INET, .sin_port = htons(40000), .sin_addr.s_addr = htonl(0x7f000001)};
	int rc = bw_doh_conn_adopt(s, pair[0], (struct sockaddr *)&peer, sizeof(peer), h2);
	CHECK(rc == 0);
	if (h2 && !preface_given)
		bufferevent_write(client, preface, sizeof(preface) - 1);
	for (size_t at = 0; at < size; at += piece) {
		bufferevent_write(client, data + at, BW_MIN(piece, size - at));
		if (lazy)
			settle();
		else
			drain(client);
		tick();
	}
	bufferevent_enable(client, EV_READ); /* a lazy client reads at last */
	drain(client);
	while (nheld) {
		tick();
		drain(client);
	}
	bw_doh_server_destroy(s);
	bufferevent_free(client);
	close(fd);
	event_base_loop(base, EVLOOP_NONBLOCK); /* libevent finalizes freed bufferevents */
	return 0;
}
