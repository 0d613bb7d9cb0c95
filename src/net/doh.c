/* net/doh.c - DNS over HTTPS (RFC 8484): TLS connections speaking HTTP/2 (nghttp2) or
 * HTTP/1.1 (chosen by ALPN), each request handed to the core as one DNS message with a
 * handle of its own, each answer sent back on its stream. See docs/internals/encrypted.md.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dns/dns.h"
#include "net/internal.h"

#define MAX_REFUSED 100     /* streams refused (over the cap) before the connection goes */
#define MAX_RESETS_PER_S 200 /* client stream resets per second before the connection goes */
#define LINGER_MS 2000       /* HTTP/1.1: after an error status, how long we drain input */

struct doh_conn;

struct doh_stream {
	struct bw_reply reply; /* first: the core's handle for this request */
	unsigned holds;        /* the core answers it later: held until answered/released */
	struct bw_doh_server *srv;
	struct doh_conn *conn; /* NULL once the connection is gone */
	struct doh_stream *prev, *next;
	int32_t id;            /* HTTP/2 stream id; 0 for HTTP/1.1 */
	bool closed;           /* HTTP/2: nghttp2 closed the stream */
	bool answered;         /* a response (or reset) went out */
	bool too_large;        /* the body went past 65535 bytes */
	bool pad;              /* the query was padded: pad the answer */
	bool in_request;       /* inside stream_request(): its caller frees it */
	size_t hdr_bytes;
	char method[8];
	size_t method_len;
	char *target;
	size_t target_len;
	char ctype[128];
	size_t ctype_len;
	bool has_ctype;
	uint8_t *body;
	size_t body_len;
	const char *path; /* the configured path the request matched */
	char client_id[BW_DOH_ID_MAX + 1]; /* after the path ("" when none) */
	uint8_t *resp;
	size_t resp_len, resp_off;
};

struct doh_conn {
	struct bw_doh_server *srv;
	struct bw_stream io;  /* socket, TLS, timers, admission (stream.c) */
	bool h2;
	bool closing;       /* close once the output is flushed */
	bool read_paused;
	bool linger;        /* HTTP/1.1: error sent; drop input until the client closes */
	bool in_recv;       /* inside nghttp2_session_mem_recv(): no sending, no closing */
	nghttp2_session *ng;
	struct doh_stream *streams; /* streams tied to this connection */
	unsigned nstreams;
	unsigned refused;
	unsigned resets;
	uint64_t reset_window_ms;
	struct doh_stream *h1_cur; /* HTTP/1.1: the request being answered */
	char sni[256];
};

struct bw_doh_server {
	struct bw_stream_listener ls; /* the socket; the open connections, caps and shares */
	struct bw_doh_opts opts;
	bw_stream_msg_fn on_msg;
	void *ctx;
	struct doh_stream *orphans; /* held by the core after their connection went */
	nghttp2_session_callbacks *cbs;
	uint8_t msg[BW_DNS_MAXMSG];
};

static void conn_close(struct doh_conn *c);
static const struct bw_reply_ops reply_ops;
static void start_linger(struct doh_conn *c);
static bool conn_flush(struct doh_conn *c);
static void h1_next(struct doh_conn *c);

/* ---- streams ---- */

static void list_remove(struct doh_stream **head, struct doh_stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		*head = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
}

static void list_add(struct doh_stream **head, struct doh_stream *st)
{
	st->prev = NULL;
	st->next = *head;
	if (*head)
		(*head)->prev = st;
	*head = st;
}

static void stream_free(struct doh_stream *st)
{
	free(st->target);
	free(st->body);
	free(st->resp);
	free(st);
}

/* Frees st when neither the connection (HTTP/2 or HTTP/1.1) nor the core needs it. */
static void stream_maybe_free(struct doh_stream *st)
{
	if (st->holds || st->in_request)
		return;
	if (st->conn) {
		if (st->conn->h2 ? !st->closed : !st->answered)
			return;
		list_remove(&st->conn->streams, st);
		st->conn->nstreams--;
	} else {
		list_remove(&st->srv->orphans, st);
	}
	stream_free(st);
}

static struct doh_stream *stream_new(struct doh_conn *c, int32_t id)
{
	struct doh_stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->reply.ops = &reply_ops;
	st->srv = c->srv;
	st->conn = c;
	st->id = id;
	list_add(&c->streams, st);
	c->nstreams++;
	return st;
}

static struct doh_stream *stream_of(const struct bw_reply *r)
{
	return (struct doh_stream *)r; /* the handle is the first member */
}

/* ---- responses ---- */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static ssize_t read_resp(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	(void)ng;
	(void)id;
	(void)user;
	struct doh_stream *st = src->ptr;
	size_t n = st->resp_len - st->resp_off;
	if (n > len)
		n = len;
	memcpy(buf, st->resp + st->resp_off, n);
	st->resp_off += n;
	if (st->resp_off == st->resp_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

#define NV(n, v, vl) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE}

/* Sends status (with st->resp as the body when 200) on st's stream. */
static void respond(struct doh_stream *st, int status, uint32_t max_age)
{
	struct doh_conn *c = st->conn;
	st->answered = true;
	if (!c || !c->io.bev)
		return;
	char code[4], clen[16], cc[32];
	snprintf(code, sizeof(code), "%d", status);
	snprintf(clen, sizeof(clen), "%zu", status == 200 ? st->resp_len : 0);
	snprintf(cc, sizeof(cc), "max-age=%u", max_age);
	if (c->h2) {
		if (st->closed)
			return;
		nghttp2_nv nva[5] = {NV(":status", code, 3), NV("content-length", clen, strlen(clen))};
		size_t n = 2;
		if (status == 200) {
			nghttp2_nv t = NV("content-type", "application/dns-message", 23);
			nghttp2_nv m = NV("cache-control", cc, strlen(cc));
			nva[n++] = t;
			nva[n++] = m;
		} else if (status == 405) {
			nghttp2_nv a = NV("allow", "GET, POST", 9);
			nva[n++] = a;
		}
		nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_resp};
		if (nghttp2_submit_response(c->ng, st->id, nva, n,
					    status == 200 && st->resp_len ? &prd : NULL) != 0)
			nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id,
						  NGHTTP2_INTERNAL_ERROR);
		if (!c->in_recv)
			conn_flush(c);
		return;
	}
	struct evbuffer *out = bufferevent_get_output(c->io.bev);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\ncontent-length: %s\r\n", status,
			    reason(status), clen);
	if (status == 200)
		evbuffer_add_printf(out, "content-type: application/dns-message\r\n"
					 "cache-control: %s\r\n",
				    cc);
	if (status == 405)
		evbuffer_add_printf(out, "allow: GET, POST\r\n");
	evbuffer_add(out, "\r\n", 2);
	if (status == 200)
		evbuffer_add(out, st->resp, st->resp_len);
}

/* Lingering close: read and drop what the client still sends (a body we refused, frames
 * after our GOAWAY), so that closing with unread data does not reset the connection
 * before the client has read our last words; it closes, or we do after LINGER_MS. */
static void start_linger(struct doh_conn *c)
{
	if (c->linger)
		return;
	c->linger = true;
	struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
	bufferevent_set_timeouts(c->io.bev, &tv, &tv);
	bufferevent_enable(c->io.bev, EV_READ);
	c->read_paused = false;
	struct evbuffer *in = bufferevent_get_input(c->io.bev);
	evbuffer_drain(in, evbuffer_get_length(in));
}

/* HTTP/1.1: a status for a request we could not even parse; then close. */
static void h1_fail(struct doh_conn *c, int status)
{
	struct evbuffer *out = bufferevent_get_output(c->io.bev);
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
			    status, reason(status));
	start_linger(c);
}

/* The request is complete: decode it, hand the query to the core. */
static void stream_request(struct doh_stream *st)
{
	struct doh_conn *c = st->conn;
	struct bw_doh_server *s = c->srv;
	struct bw_doh_request r = {
	    .method = st->method,
	    .method_len = st->method_len,
	    .target = st->target,
	    .target_len = st->target_len,
	    .ctype = st->has_ctype ? st->ctype : NULL,
	    .ctype_len = st->ctype_len,
	    .body = st->body,
	    .body_len = st->body_len,
	    .body_too_large = st->too_large,
	};
	size_t idx = 0, len = 0;
	int status = bw_doh_decode(&r, s->opts.paths, s->opts.n_paths, &idx, st->client_id,
				   s->msg, sizeof(s->msg), &len);
	if (status != 200) {
		respond(st, status, 0);
		return;
	}
	st->path = s->opts.paths[idx];
	st->pad = bw_dns_query_padded(s->msg, len);
	st->in_request = true;
	bw_admit_touch(&s->ls.admit, &c->io.link);
	s->on_msg(&st->reply, s->msg, len, s->ctx);
	st->in_request = false;
	c = st->conn;
	if (!st->answered && st->holds == 0) {
		/* dropped by the core (access control, a DROP rule): no answer will come */
		st->answered = true;
		if (c && c->io.bev && c->h2 && !st->closed) {
			nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id,
						  NGHTTP2_REFUSED_STREAM);
		} else if (c && c->io.bev && !c->h2) {
			c->closing = true;
			bufferevent_disable(c->io.bev, EV_READ);
		}
	}
}

/* ---- the core's side of a request: its reply handle ---- */

static void reply_hold(struct bw_reply *r)
{
	stream_of(r)->holds++;
}

static void reply_release(struct bw_reply *r)
{
	struct doh_stream *st = stream_of(r);
	if (st->holds > 1 || st->in_request) {
		if (st->holds)
			st->holds--;
		return; /* not the last hold, or stream_request() finishes what it started */
	}
	/* the last hold: keep it until we are done with st */
	struct doh_conn *c = st->conn;
	if (c && c->io.bev && !st->answered) {
		/* released without an answer */
		st->answered = true;
		if (c->h2 && !st->closed) {
			nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id,
						  NGHTTP2_INTERNAL_ERROR);
			if (!c->in_recv && !conn_flush(c))
				c = NULL; /* closed: st is an orphan now */
		} else if (!c->h2) {
			c->closing = true;
		}
	}
	st->holds = 0;
	bool h1_done = c && !c->h2 && c->h1_cur == st;
	stream_maybe_free(st);
	if (h1_done) {
		c->h1_cur = NULL;
		h1_next(c);
	}
}

static void reply_answer(struct bw_reply *r, const uint8_t *msg, size_t len)
{
	struct doh_stream *st = stream_of(r);
	if (!st->answered && st->conn && st->conn->io.bev && len <= BW_DNS_MAXMSG) {
		size_t cap = BW_MIN((size_t)BW_DNS_MAXMSG, len + 4 + BW_PAD_BLOCK);
		st->resp = malloc(cap);
		if (st->resp) {
			memcpy(st->resp, msg, len);
			if (st->pad)
				len = bw_dns_pad(st->resp, len, cap, BW_PAD_BLOCK);
			st->resp_len = len;
			respond(st, 200, bw_dns_min_ttl(st->resp, len));
		}
	}
	reply_release(r);
}

/* A synchronous answer: as an asynchronous one, with its own hold. */
static void reply_send(struct bw_reply *r, const uint8_t *msg, size_t len)
{
	reply_hold(r);
	reply_answer(r, msg, len);
}

static const struct sockaddr *reply_peer(const struct bw_reply *r, socklen_t *len)
{
	const struct doh_stream *st = stream_of(r);
	static const struct sockaddr_storage none;
	if (!st->conn) {
		*len = 0;
		return (const struct sockaddr *)&none;
	}
	*len = st->conn->io.peerlen;
	return (const struct sockaddr *)&st->conn->io.peer;
}

static int reply_listener(const struct bw_reply *r)
{
	return stream_of(r)->srv->opts.stream.listener_index;
}

static const char *reply_sni(const struct bw_reply *r)
{
	const struct doh_stream *st = stream_of(r);
	return st->conn && st->conn->sni[0] ? st->conn->sni : NULL;
}

static const char *reply_doh_path(const struct bw_reply *r)
{
	return stream_of(r)->path;
}

static const char *reply_client_id(const struct bw_reply *r)
{
	const struct doh_stream *st = stream_of(r);
	return st->client_id[0] ? st->client_id : NULL;
}

static const struct bw_reply_ops reply_ops = {
    .hold = reply_hold,
    .answer = reply_answer,
    .release = reply_release,
    .send = reply_send,
    .peer = reply_peer,
    .listener = reply_listener,
    .sni = reply_sni,
    .doh_path = reply_doh_path,
    .client_id = reply_client_id,
};

/* ---- HTTP/2 ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct doh_conn *c = user;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (c->nstreams >= c->srv->opts.max_streams) {
		/* over the cap (counting requests still being answered): refuse */
		if (++c->refused > MAX_REFUSED) {
			nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
			return 0;
		}
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
					  NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	struct doh_stream *st = stream_new(c, f->hd.stream_id);
	if (!st)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, st);
	return 0;
}

static void copy_small(char *dst, size_t cap, size_t *dlen, const uint8_t *v, size_t vl)
{
	size_t n = vl < cap ? vl : cap;
	memcpy(dst, v, n);
	*dlen = vl < cap ? vl : cap + 1; /* cap + 1: too long, never matches */
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	(void)flags;
	(void)user;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct doh_stream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!st)
		return 0;
	st->hdr_bytes += namelen + valuelen + 32;
	if (st->hdr_bytes > BW_HTTP_MAX_HEAD)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
	if (namelen == 7 && !memcmp(name, ":method", 7)) {
		copy_small(st->method, sizeof(st->method), &st->method_len, value, valuelen);
		st->method_len = BW_MIN(st->method_len, sizeof(st->method));
	} else if (namelen == 5 && !memcmp(name, ":path", 5)) {
		if (st->target)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		st->target = malloc(valuelen + 1);
		if (!st->target)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		memcpy(st->target, value, valuelen);
		st->target[valuelen] = '\0';
		st->target_len = valuelen;
	} else if (namelen == 12 && !memcmp(name, "content-type", 12)) {
		st->has_ctype = true;
		copy_small(st->ctype, sizeof(st->ctype), &st->ctype_len, value, valuelen);
		st->ctype_len = BW_MIN(st->ctype_len, sizeof(st->ctype));
	}
	return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
		   size_t len, void *user)
{
	(void)flags;
	(void)user;
	struct doh_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (!st || st->too_large)
		return 0;
	if (st->body_len + len > BW_DNS_MAXMSG) {
		st->too_large = true;
		free(st->body);
		st->body = NULL;
		st->body_len = 0;
		return 0;
	}
	if (!st->body) {
		st->body = malloc(BW_DNS_MAXMSG);
		if (!st->body)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	memcpy(st->body + st->body_len, data, len);
	st->body_len += len;
	return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct doh_conn *c = user;
	if (f->hd.type == NGHTTP2_RST_STREAM) {
		/* rapid reset (CVE-2023-44487): bound resets per second */
		uint64_t now = bw_now_ms();
		if (now - c->reset_window_ms >= 1000) {
			c->reset_window_ms = now;
			c->resets = 0;
		}
		if (++c->resets > MAX_RESETS_PER_S)
			nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
		return 0;
	}
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct doh_stream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!st || st->answered || st->holds)
		return 0;
	stream_request(st);
	stream_maybe_free(st);
	return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
	(void)code;
	(void)user;
	struct doh_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	st->closed = true;
	stream_maybe_free(st);
	return 0;
}

static int h2_start(struct doh_conn *c)
{
	nghttp2_option *opt;
	if (nghttp2_option_new(&opt) != 0)
		return -1;
	nghttp2_option_set_max_send_header_block_length(opt, 16384);
	int rc = nghttp2_session_server_new2(&c->ng, c->srv->cbs, c, opt);
	nghttp2_option_del(opt);
	if (rc != 0)
		return -1;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->srv->opts.max_streams},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, BW_HTTP_MAX_HEAD},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535},
	};
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])))
		return -1;
	c->h2 = true;
	return 0;
}

/* Moves nghttp2's output to the socket, up to the output cap. Returns false when it
 * closed (and freed) the connection. */
static bool conn_flush(struct doh_conn *c)
{
	if (!c->io.bev || !c->h2)
		return true;
	struct evbuffer *out = bufferevent_get_output(c->io.bev);
	while (evbuffer_get_length(out) < c->srv->opts.stream.max_output) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->ng, &data);
		if (n < 0) {
			conn_close(c);
			return false;
		}
		if (n == 0)
			break;
		evbuffer_add(out, data, (size_t)n);
	}
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
		start_linger(c); /* GOAWAY sent (or the client's received) */
	if (c->closing && evbuffer_get_length(out) == 0) {
		conn_close(c);
		return false;
	}
	return true;
}

static void h2_read(struct doh_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->io.bev);
	while (!c->linger && evbuffer_get_length(in) > 0) {
		size_t unsent = evbuffer_get_length(bufferevent_get_output(c->io.bev));
		if (unsent >= c->srv->opts.stream.max_output) {
			/* the client does not read: stop reading until it does */
			bufferevent_disable(c->io.bev, EV_READ);
			c->read_paused = true;
			return;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		c->in_recv = true;
		ssize_t n = nghttp2_session_mem_recv(c->ng, v.iov_base, v.iov_len);
		c->in_recv = false;
		if (n < 0) {
			/* a protocol error: nghttp2 queued a GOAWAY; send it, then linger */
			start_linger(c);
			(void)conn_flush(c);
			return;
		}
		evbuffer_drain(in, (size_t)n);
	}
	(void)conn_flush(c); /* once for everything read: fewer, fuller TLS records */
}

/* ---- HTTP/1.1 ---- */

/* Takes the next request from the input when none is being answered. */
static void h1_next(struct doh_conn *c)
{
	if (c->h1_cur || c->closing || c->linger || !c->io.bev)
		return;
	struct evbuffer *in = bufferevent_get_input(c->io.bev);
	size_t have = evbuffer_get_length(in);
	if (!have)
		return;
	size_t look = BW_MIN(have, (size_t)BW_HTTP_MAX_HEAD);
	const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)look);
	struct bw_http1_head hd;
	int rc = bw_http1_parse(buf, look, &hd);
	if (rc == 0 && have >= BW_HTTP_MAX_HEAD)
		rc = -431;
	if (rc < 0) {
		h1_fail(c, -rc);
		return;
	}
	if (rc == 0)
		return; /* more to come */
	size_t head = (size_t)rc, body = hd.has_length ? hd.content_length : 0;
	if (have < head + body)
		return;
	struct doh_stream *st = stream_new(c, 0);
	if (!st) {
		conn_close(c);
		return;
	}
	buf = (const char *)evbuffer_pullup(in, (ssize_t)(head + body));
	st->target = malloc(hd.target_len + 1);
	if (body)
		st->body = malloc(body);
	if (!st->target || (body && !st->body)) {
		conn_close(c);
		return;
	}
	memcpy(st->target, hd.target, hd.target_len);
	st->target[hd.target_len] = '\0';
	st->target_len = hd.target_len;
	copy_small(st->method, sizeof(st->method), &st->method_len, (const uint8_t *)hd.method,
		   hd.method_len);
	st->method_len = BW_MIN(st->method_len, sizeof(st->method));
	if (hd.ctype) {
		st->has_ctype = true;
		copy_small(st->ctype, sizeof(st->ctype), &st->ctype_len,
			   (const uint8_t *)hd.ctype, hd.ctype_len);
		st->ctype_len = BW_MIN(st->ctype_len, sizeof(st->ctype));
	}
	if (body)
		memcpy(st->body, buf + head, body);
	st->body_len = body;
	evbuffer_drain(in, head + body);
	if (hd.close)
		bufferevent_disable(c->io.bev, EV_READ);
	c->h1_cur = st;
	stream_request(st);
	if (hd.close && c->io.bev)
		c->closing = true;
	/* answered at once (or refused): finish it and look at the next request */
	if (c->io.bev && c->h1_cur == st && st->answered && !st->holds) {
		c->h1_cur = NULL;
		stream_maybe_free(st);
		if (c->io.bev && evbuffer_get_length(bufferevent_get_output(c->io.bev)) <
				  c->srv->opts.stream.max_output)
			h1_next(c);
	}
}

/* ---- connections ---- */

static void conn_close(struct doh_conn *c)
{
	struct bw_doh_server *s = c->srv;
	if (!c->io.bev)
		return;
	if (c->ng)
		nghttp2_session_del(c->ng);
	c->ng = NULL;
	bw_stream_close(&c->io, &s->ls.admit);
	/* requests the core still holds go to the orphans until it lets go */
	while (c->streams) {
		struct doh_stream *st = c->streams;
		list_remove(&c->streams, st);
		st->conn = NULL;
		if (st->holds || st->in_request)
			list_add(&s->orphans, st);
		else
			stream_free(st);
	}
	free(c);
}

/* The handshake is done: count it, note the server name, start the protocol ALPN chose.
 * Runs once, on the CONNECTED event or the first read, whichever libevent delivers first.
 * Returns false when it closed (and freed) the connection. */
static bool conn_started(struct doh_conn *c)
{
	if (!bw_stream_started(&c->io, c->srv->opts.stream.tls))
		return true;
	SSL *ssl = bufferevent_openssl_get_ssl(c->io.bev);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (sni && strlen(sni) < sizeof(c->sni))
		memcpy(c->sni, sni, strlen(sni) + 1);
	const unsigned char *alpn;
	unsigned alen;
	SSL_get0_alpn_selected(ssl, &alpn, &alen);
	if (alen == 2 && !memcmp(alpn, "h2", 2)) {
		if (h2_start(c) != 0) {
			conn_close(c);
			return false;
		}
		return conn_flush(c);
	}
	return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct doh_conn *c = arg;
	if (!conn_started(c))
		return;
	if (c->linger) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (c->h2)
		h2_read(c);
	else
		h1_next(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct doh_conn *c = arg;
	if (c->h2 && !conn_flush(c))
		return;
	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		conn_close(c);
		return;
	}
	if (c->read_paused) {
		c->read_paused = false;
		bufferevent_enable(bev, EV_READ);
	}
	if (c->h2)
		h2_read(c);
	else
		h1_next(c);
}

static bool conn_busy(const struct doh_conn *c)
{
	for (const struct doh_stream *st = c->streams; st; st = st->next)
		if (st->holds)
			return true;
	return false;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct doh_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		(void)conn_started(c);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && !(what & BEV_EVENT_ERROR) && conn_busy(c)) {
		bufferevent_enable(bev, what & BEV_EVENT_READING ? EV_READ : EV_WRITE);
		return; /* still answering its requests */
	}
	conn_close(c);
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct doh_conn *c = arg;
	if (!c->io.handshake_done)
		conn_close(c);
}

#define conn_of(l) ((struct doh_conn *)((char *)(l) - offsetof(struct doh_conn, io.link)))

/* The listener is full: closes victim if it is idle (no request open, nothing unsent). */
static bool evict_idle(struct bw_admit_link *victim)
{
	struct doh_conn *c = conn_of(victim);
	if (c->in_recv || c->nstreams || !bw_stream_idle(&c->io))
		return false;
	conn_close(c);
	return true;
}

/* A new connection of server s (the stream base opens it). */
static void *conn_new(void *server)
{
	struct doh_conn *c = calloc(1, sizeof(*c));
	if (c)
		c->srv = server;
	return c;
}

int bw_doh_conn_adopt(struct bw_doh_server *s, struct bufferevent *bev,
		      const struct sockaddr *peer, socklen_t peerlen, bool h2)
{
	struct doh_conn *c = conn_new(s);
	if (!c) {
		bufferevent_free(bev);
		return BW_ENOMEM;
	}
	int rc = bw_admit_enter(&s->ls.admit, &c->io.link, peer, evict_idle);
	if (rc != 0) {
		bufferevent_free(bev);
		free(c);
		return rc;
	}
	if (peerlen <= sizeof(c->io.peer)) {
		memcpy(&c->io.peer, peer, peerlen);
		c->io.peerlen = peerlen;
	}
	c->io.bev = bev; /* the connection's now: freed by conn_close() */
	c->io.handshake_done = true;
	bufferevent_setcb(bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(bev, EV_READ, s->ls.setup.read_low, s->ls.setup.read_high);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (h2) {
		if (h2_start(c) != 0) {
			conn_close(c);
			return BW_ENOMEM;
		}
		(void)conn_flush(c);
	}
	return 0;
}

struct bw_doh_server *bw_doh_server_create(struct event_base *base, int listen_fd,
					   const struct bw_doh_opts *opts, bw_stream_msg_fn on_msg,
					   void *ctx)
{
	struct bw_doh_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->opts = *opts;
	if (!s->opts.stream.max_output)
		s->opts.stream.max_output = 256 * 1024;
	if (!s->opts.max_streams)
		s->opts.max_streams = 100;
	if (!s->opts.stream.max_conns)
		s->opts.stream.max_conns = 1024;
	if (!s->opts.stream.idle_ms)
		s->opts.stream.idle_ms = 10000;
	if (!s->opts.stream.handshake_ms)
		s->opts.stream.handshake_ms = 5000;
	s->on_msg = on_msg;
	s->ctx = ctx;
	/* the array is ours (the strings stay borrowed) */
	const char **paths = calloc(opts->n_paths ? opts->n_paths : 1, sizeof(*paths));
	if (!paths) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < opts->n_paths; i++)
		paths[i] = opts->paths[i];
	s->opts.paths = paths;
	if (nghttp2_session_callbacks_new(&s->cbs) != 0) {
		free(paths);
		free(s);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_close);
	s->ls.setup = (struct bw_stream_setup){
	    .tls = s->opts.stream.tls,
	    .tls_filter = false, /* DoH: OpenSSL on the socket (docs/internals/encrypted.md) */
	    .handshake_ms = s->opts.stream.handshake_ms,
	    .idle_ms = s->opts.stream.idle_ms,
	    /* never buffer more than one request head and body from a client at a time */
	    .read_high = BW_HTTP_MAX_HEAD + BW_DNS_MAXMSG + 1024,
	    .evict = evict_idle,
	    .on_handshake_timeout = on_handshake_timeout,
	    .on_read = on_read,
	    .on_write = on_write,
	    .on_event = on_event,
	};
	s->ls.conn_new = conn_new;
	s->ls.io_offset = offsetof(struct doh_conn, io);
	s->ls.layer = s;
	if (bw_stream_listen(&s->ls, base, listen_fd, "doh", &s->opts.stream) != 0) {
		nghttp2_session_callbacks_del(s->cbs);
		free(paths);
		free(s);
		return NULL;
	}
	return s;
}

void bw_doh_server_stop_accepting(struct bw_doh_server *s)
{
	bw_stream_listener_stop(&s->ls);
}

void bw_doh_server_destroy(struct bw_doh_server *s)
{
	if (!s)
		return;
	for (struct bw_stream *io; (io = bw_stream_listener_any(&s->ls));) {
		struct doh_conn *c = conn_of(&io->link);
		/* the loop has stopped: no answer will come back */
		for (struct doh_stream *st = c->streams; st; st = st->next)
			st->holds = 0;
		conn_close(c);
	}
	while (s->orphans) {
		struct doh_stream *st = s->orphans;
		list_remove(&s->orphans, st);
		stream_free(st);
	}
	bw_stream_listener_free(&s->ls);
	nghttp2_session_callbacks_del(s->cbs);
	free((void *)s->opts.paths);
	free(s);
}

unsigned bw_doh_server_conns(const struct bw_doh_server *s)
{
	return s->ls.admit.n;
}
