/*
 * policy/explain.h - explain a verdict: every matching rule with its origin, in
 * precedence order, and the winner (see explain.c). Not for the query path.
 */
#ifndef BW_POLICY_EXPLAIN_H
#define BW_POLICY_EXPLAIN_H

#include <stdio.h>

#include "policy/policy.h"

/* Writes the explanation of name_text (as asked by client on listener, which may be NULL
 * and -1) under snapshot p built from conf. Returns 1 when the name is blocked, 0 when
 * it resolves normally, or a negative BW_E*. */
int bw_policy_explain(const struct bw_conf *conf, const struct bw_policy *p, const char *name_text,
		      const struct sockaddr *client, int listener, FILE *out);
/* "NXDOMAIN", "PASSTHRU", ... */
const char *bw_action_name(enum bw_action a);

#endif
