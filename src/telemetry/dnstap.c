/*
 * telemetry/dnstap.c - dnstap messages encoded with protobuf-c (code generated from
 * dnstap.proto at build time) and written by an fstrm I/O thread, one single-producer
 * input queue per worker. A message costs one malloc (fstrm frees it once written);
 * nothing here ever blocks a worker.
 */
#include <fstrm.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf.h"
#include "dnstap.pb-c.h"
#include "telemetry/dnstap.h"

#ifndef BW_VERSION
#define BW_VERSION "0.1.0"
#endif

#define CONTENT_TYPE "protobuf:dnstap.Dnstap"
#define QUEUE_SIZE 4096 /* messages per worker queue (a power of two) */

struct bw_dnstap {
	struct fstrm_iothr *iothr;
	struct fstrm_iothr_queue **q;
	unsigned nq;
	enum bw_privacy privacy;
	bool log_queries, log_responses;
	char *identity, *version;
};

void bw_dnstap_truncate(int family, uint8_t *addr)
{
	if (family == AF_INET)
		addr[3] = 0; /* /24 */
	else if (family == AF_INET6)
		memset(addr + 7, 0, 9); /* /56 */
}

static void dt_free(struct bw_dnstap *d)
{
	if (!d)
		return;
	if (d->iothr)
		fstrm_iothr_destroy(&d->iothr);
	free(d->q);
	free(d->identity);
	free(d->version);
	free(d);
}

struct bw_dnstap *bw_dnstap_create(const struct bw_conf *conf, unsigned queues, char *err,
				   size_t errlen)
{
	struct bw_dnstap *d = calloc(1, sizeof(*d));
	struct fstrm_writer_options *wopt = NULL;
	struct fstrm_unix_writer_options *uopt = NULL;
	struct fstrm_tcp_writer_options *topt = NULL;
	struct fstrm_iothr_options *iopt = NULL;
	struct fstrm_writer *writer = NULL;
	char host[256] = "bulwark", port[8];

	if (!d)
		goto nomem;
	d->nq = queues ? queues : 1;
	d->privacy = conf->telemetry.privacy;
	d->log_queries = conf->dnstap.log_queries;
	d->log_responses = conf->dnstap.log_responses;
	if (!conf->dnstap.identity && gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "bulwark");
	d->identity = strdup(conf->dnstap.identity ? conf->dnstap.identity : host);
	d->version = strdup(conf->dnstap.version ? conf->dnstap.version : "bulwark " BW_VERSION);
	d->q = calloc(d->nq, sizeof(*d->q));
	wopt = fstrm_writer_options_init();
	iopt = fstrm_iothr_options_init();
	if (!d->identity || !d->version || !d->q || !wopt || !iopt)
		goto nomem;
	fstrm_writer_options_add_content_type(wopt, CONTENT_TYPE, strlen(CONTENT_TYPE));
	if (conf->dnstap.socket) {
		uopt = fstrm_unix_writer_options_init();
		if (!uopt)
			goto nomem;
		fstrm_unix_writer_options_set_socket_path(uopt, conf->dnstap.socket);
		writer = fstrm_unix_writer_init(uopt, wopt);
	} else {
		topt = fstrm_tcp_writer_options_init();
		if (!topt)
			goto nomem;
		snprintf(port, sizeof(port), "%u", (unsigned)conf->dnstap.tcp_port);
		fstrm_tcp_writer_options_set_socket_address(topt, conf->dnstap.tcp_address);
		fstrm_tcp_writer_options_set_socket_port(topt, port);
		writer = fstrm_tcp_writer_init(topt, wopt);
	}
	if (!writer) {
		snprintf(err, errlen, "dnstap: cannot set up the output");
		goto fail;
	}
	fstrm_iothr_options_set_num_input_queues(iopt, d->nq);
	fstrm_iothr_options_set_queue_model(iopt, FSTRM_IOTHR_QUEUE_MODEL_SPSC);
	fstrm_iothr_options_set_input_queue_size(iopt, QUEUE_SIZE);
	fstrm_iothr_options_set_reopen_interval(iopt, 1);
	fstrm_iothr_options_set_flush_timeout(iopt, 1);
	d->iothr = fstrm_iothr_init(iopt, &writer); /* takes the writer */
	if (!d->iothr) {
		snprintf(err, errlen, "dnstap: cannot start the output thread");
		goto fail;
	}
	for (unsigned i = 0; i < d->nq; i++) {
		d->q[i] = fstrm_iothr_get_input_queue_idx(d->iothr, i);
		if (!d->q[i]) {
			snprintf(err, errlen, "dnstap: cannot get an input queue");
			goto fail;
		}
	}
	fstrm_iothr_options_destroy(&iopt);
	fstrm_writer_options_destroy(&wopt);
	if (uopt)
		fstrm_unix_writer_options_destroy(&uopt);
	if (topt)
		fstrm_tcp_writer_options_destroy(&topt);
	return d;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	if (writer)
		fstrm_writer_destroy(&writer);
	if (iopt)
		fstrm_iothr_options_destroy(&iopt);
	if (wopt)
		fstrm_writer_options_destroy(&wopt);
	if (uopt)
		fstrm_unix_writer_options_destroy(&uopt);
	if (topt)
		fstrm_tcp_writer_options_destroy(&topt);
	dt_free(d);
	return NULL;
}

void bw_dnstap_destroy(struct bw_dnstap *d)
{
	dt_free(d); /* fstrm_iothr_destroy() flushes what is queued and joins the thread */
}

bool bw_dnstap_wants(const struct bw_dnstap *d, enum bw_dnstap_type type, bool blocked)
{
	if (!d || d->privacy == BW_PRIVACY_NONE)
		return false;
	if (d->privacy == BW_PRIVACY_BLOCKED_ONLY && !blocked)
		return false;
	return type == BW_DNSTAP_CLIENT_QUERY ? d->log_queries : d->log_responses;
}

/* family, address bytes (truncated unless privacy is full) and port of sa. */
static int addr_of(const struct sockaddr *sa, bool truncate, uint8_t *buf, size_t *len,
		   uint32_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memcpy(buf, &in->sin_addr, 4);
		*len = 4;
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(buf, &in6->sin6_addr, 16);
		*len = 16;
		*port = ntohs(in6->sin6_port);
	} else {
		return 0;
	}
	if (truncate)
		bw_dnstap_truncate(sa->sa_family, buf);
	return sa->sa_family;
}

int bw_dnstap_send(struct bw_dnstap *d, unsigned queue, const struct bw_dnstap_msg *m)
{
	Dnstap__Dnstap top = DNSTAP__DNSTAP__INIT;
	Dnstap__Message msg = DNSTAP__MESSAGE__INIT;
	Dnstap__Policy pol = DNSTAP__POLICY__INIT;
	uint8_t qa[16], ra[16], pv[16];
	size_t qalen = 0, ralen = 0;
	uint32_t qport = 0, rport = 0;

	top.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
	top.has_identity = true;
	top.identity.data = (uint8_t *)d->identity;
	top.identity.len = strlen(d->identity);
	top.has_version = true;
	top.version.data = (uint8_t *)d->version;
	top.version.len = strlen(d->version);
	top.message = &msg;

	msg.type = (Dnstap__Message__Type)m->type;
	msg.has_socket_protocol = true;
	msg.socket_protocol = m->tcp ? DNSTAP__SOCKET_PROTOCOL__TCP : DNSTAP__SOCKET_PROTOCOL__UDP;
	bool trunc = d->privacy != BW_PRIVACY_FULL;
	int fam = m->client ? addr_of(m->client, trunc, qa, &qalen, &qport) : 0;
	if (fam) {
		msg.has_socket_family = true;
		msg.socket_family =
		    fam == AF_INET ? DNSTAP__SOCKET_FAMILY__INET : DNSTAP__SOCKET_FAMILY__INET6;
		msg.has_query_address = true;
		msg.query_address.data = qa;
		msg.query_address.len = qalen;
		if (d->privacy == BW_PRIVACY_FULL) {
			msg.has_query_port = true;
			msg.query_port = qport;
		}
	}
	if (m->server && m->server->sa_family == fam) {
		addr_of(m->server, false, ra, &ralen, &rport); /* our own address: no secret */
		msg.has_response_address = true;
		msg.response_address.data = ra;
		msg.response_address.len = ralen;
		msg.has_response_port = true;
		msg.response_port = rport;
	}
	msg.has_query_time_sec = msg.has_query_time_nsec = true;
	msg.query_time_sec = (uint64_t)m->qtime.tv_sec;
	msg.query_time_nsec = (uint32_t)m->qtime.tv_nsec;
	if (m->query) {
		msg.has_query_message = true;
		msg.query_message.data = (uint8_t *)m->query;
		msg.query_message.len = m->query_len;
	}
	if (m->type == BW_DNSTAP_CLIENT_RESPONSE) {
		msg.has_response_time_sec = msg.has_response_time_nsec = true;
		msg.response_time_sec = (uint64_t)m->rtime.tv_sec;
		msg.response_time_nsec = (uint32_t)m->rtime.tv_nsec;
		if (m->response) {
			msg.has_response_message = true;
			msg.response_message.data = (uint8_t *)m->response;
			msg.response_message.len = m->response_len;
		}
	}
	if (m->policy) {
		const struct bw_dnstap_policy *p = m->policy;
		pol.type = (char *)"RPZ";
		if (p->rule) {
			pol.has_rule = true;
			pol.rule.data = (uint8_t *)p->rule;
			pol.rule.len = strlen(p->rule);
		}
		pol.has_action = p->action != 0;
		pol.action = (Dnstap__Policy__Action)p->action;
		pol.has_match = p->match != 0;
		pol.match = (Dnstap__Policy__Match)p->match;
		if (p->match == BW_DNSTAP_MATCH_CLIENT_IP) {
			/* the client's address, as truncated as query_address */
			if (qalen) {
				memcpy(pv, qa, qalen);
				pol.has_value = true;
				pol.value.data = pv;
				pol.value.len = qalen;
			}
		} else if (p->value && p->value_len) {
			pol.has_value = true;
			pol.value.data = (uint8_t *)p->value;
			pol.value.len = p->value_len;
		}
		msg.policy = &pol;
	}

	size_t len = dnstap__dnstap__get_packed_size(&top);
	uint8_t *buf = malloc(len);
	if (!buf)
		return BW_ENOMEM;
	dnstap__dnstap__pack(&top, buf);
	fstrm_res r = fstrm_iothr_submit(d->iothr, d->q[queue % d->nq], buf, len,
					 fstrm_free_wrapper, NULL);
	if (r != fstrm_res_success) {
		free(buf); /* still ours on failure */
		return BW_ESPACE;
	}
	return 0;
}
