/* net/tls.c - TLS server contexts for DoT and DoH: certificate files, TLS 1.2/1.3,
 * session tickets, ALPN, and the swap on reload. */
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/internal.h"

struct bw_tls {
	pthread_mutex_t mu; /* guards ctx: taking a reference vs. swapping */
	SSL_CTX *ctx;
	char *cert, *key;
	enum bw_tls_kind kind;
	_Atomic uint64_t full, resumed;
};

static const unsigned char alpn_dot[] = "\x03" "dot";
static const unsigned char alpn_doh[] = "\x02" "h2" "\x08" "http/1.1";
static const unsigned char alpn_http1[] = "\x08" "http/1.1";

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	const struct bw_tls *t = arg;
	const unsigned char *ours = t->kind == BW_TLS_DOT	  ? alpn_dot
				    : t->kind == BW_TLS_HTTP1 ? alpn_http1
							      : alpn_doh;
	unsigned ours_len = t->kind == BW_TLS_DOT     ? sizeof(alpn_dot) - 1
			    : t->kind == BW_TLS_HTTP1 ? sizeof(alpn_http1) - 1
						      : sizeof(alpn_doh) - 1;
	unsigned char *sel;
	/* our preference order: h2 before http/1.1 */
	if (SSL_select_next_proto(&sel, outlen, ours, ours_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on without ALPN */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static void ssl_error(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s %s: %s", what, file, e ? buf : "failed");
	ERR_clear_error();
}

static SSL_CTX *make_ctx(struct bw_tls *t, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				     SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	static const unsigned char sid[] = "bulwark";
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, t);
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
		ssl_error(err, errlen, "tls-cert", t->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
		ssl_error(err, errlen, "tls-key", t->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, errlen, "tls-key does not match tls-cert", t->key);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int bw_tls_create(const char *cert, const char *key, enum bw_tls_kind kind,
		  struct bw_tls **out, char *err, size_t errlen)
{
	struct bw_tls *t = calloc(1, sizeof(*t));
	if (!t || !(t->cert = strdup(cert)) || !(t->key = strdup(key))) {
		if (t)
			free(t->cert);
		free(t);
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	t->kind = kind;
	pthread_mutex_init(&t->mu, NULL);
	t->ctx = make_ctx(t, err, errlen);
	if (!t->ctx) {
		bw_tls_free(t);
		return BW_EINVAL;
	}
	*out = t;
	return 0;
}

int bw_tls_reload(struct bw_tls *t, char *err, size_t errlen)
{
	SSL_CTX *ctx = make_ctx(t, err, errlen);
	if (!ctx)
		return BW_EINVAL;
	pthread_mutex_lock(&t->mu);
	SSL_CTX *old = t->ctx;
	t->ctx = ctx;
	pthread_mutex_unlock(&t->mu);
	SSL_CTX_free(old); /* connections made with it hold their own reference */
	return 0;
}

void bw_tls_free(struct bw_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->mu);
	free(t->cert);
	free(t->key);
	free(t);
}

struct bufferevent *bw_tls_bev_new(struct bw_tls *t, struct event_base *base, int fd,
				   bool filter)
{
	SSL *ssl = bw_tls_new_ssl(t);
	if (!ssl) {
		close(fd);
		return NULL;
	}
	struct bufferevent *bev;
	if (!filter) {
		bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!bev) {
			SSL_free(ssl);
			close(fd);
			return NULL;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		return bev;
	}
	/* TLS as a filter over a socket bufferevent rather than on the socket itself: the
	 * socket is read and written in large chunks (one read for many small TLS records,
	 * one write for many answers), where OpenSSL on the socket reads each record header
	 * and body with a system call of its own */
	struct bufferevent *raw = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!raw) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	/* bounded like the rest: the socket side reads at most 128 KiB ahead of TLS, and
	 * holds at most 64 KiB of encrypted output (the rest waits in the TLS bufferevent,
	 * where the transports' output caps see it) */
	bufferevent_setwatermark(raw, EV_READ, 0, 128 * 1024);
	bufferevent_setwatermark(raw, EV_WRITE, 0, 64 * 1024);
	bev = bufferevent_openssl_filter_new(base, raw, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		bufferevent_free(raw); /* closes fd */
		return NULL;
	}
	/* clients may close without close_notify: that is an EOF, not an error */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct bufferevent *bw_tls_bev_unbound(struct bw_tls *t, struct event_base *base)
{
	return bw_tls_bev_new(t, base, -1, false);
}

SSL *bw_tls_new_ssl(struct bw_tls *t)
{
	pthread_mutex_lock(&t->mu);
	SSL *ssl = SSL_new(t->ctx);
	pthread_mutex_unlock(&t->mu);
	return ssl;
}

void bw_tls_count(struct bw_tls *t, SSL *ssl)
{
	if (SSL_session_reused(ssl))
		atomic_fetch_add(&t->resumed, 1);
	else
		atomic_fetch_add(&t->full, 1);
}

void bw_tls_stats(const struct bw_tls *t, uint64_t *full, uint64_t *resumed)
{
	*full = atomic_load(&((struct bw_tls *)t)->full);
	*resumed = atomic_load(&((struct bw_tls *)t)->resumed);
}
