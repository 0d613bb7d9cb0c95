/*
 * policy/explain.h - explain a verdict: every matching rule with its origin, in
 * precedence order, and the winner (see explain.c). Not for the query path.
 */
#ifndef BW_POLICY_EXPLAIN_H
#define BW_POLICY_EXPLAIN_H

#include <stdio.h>

#include "policy/policy.h"

/* How explain resolves a name to check the answer as the pipeline does (its CNAME chain
 * and addresses): the response packet into pkt[0..*pkt_len), 0; or a negative BW_E* and
 * the reason in err. */
typedef int (*bw_explain_resolve_fn)(void *ctx, const uint8_t *name, size_t len, uint16_t qtype,
				     uint8_t *pkt, size_t cap, size_t *pkt_len, char *err,
				     size_t errlen);
struct bw_explain_opts {
	const struct sockaddr *client; /* the client's address, or NULL */
	const char *client_text;       /* what the "client:" line says (a named client and
					  why it matched), or NULL: the address */
	int profile;                   /* the profile the query gets, as the daemon chooses it
					  (core's bw_choose_profile: named clients, schedules),
					  or -1: chosen here by listener and address */
	int listener;                  /* the listener it asks on, or -1 */
	uint16_t qtype;                /* the type asked (the answer's addresses), 0: A */
	bw_explain_resolve_fn resolve; /* NULL: the answer is not checked (and explain says so) */
	const char *paused;            /* the profile's blocking is paused: "blocking is paused
					  for profile X until TIME by WHO" (core's
					  bw_server_pause_text), or NULL */
	void *resolve_ctx;
};
/* Writes the explanation of name_text under snapshot p built from conf: the rules that
 * match, with their origins, and the verdict of the pipeline's own decisions (decide.c),
 * with the EDE its answer carries. Returns 1 when the name is blocked, 0 when it resolves
 * normally, or a negative BW_E*. */
int bw_policy_explain(const struct bw_conf *conf, const struct bw_policy *p, const char *name_text,
		      const struct bw_explain_opts *o, FILE *out);
/* "NXDOMAIN", "PASSTHRU", ... */
const char *bw_action_name(enum bw_action a);

#endif
