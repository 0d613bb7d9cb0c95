/*
 * conf/conf_telemetry.c - the `telemetry:` section: what is kept about queries (privacy),
 * the query log, security events and infected-client alerts. docs/config.md lists every
 * key; docs/privacy.md says what each privacy mode keeps.
 */
#include <stdlib.h>

#include "conf/internal.h"

#define DAY_MS (86400ULL * 1000)

void cf_telemetry_defaults(struct bw_conf *conf)
{
	conf->telemetry.retention_ms = 7 * DAY_MS;
	conf->telemetry.ring_size = 16384;
	conf->telemetry.spool_size = 1ULL << 30;
	conf->telemetry.spool_stop_wait_ms = 5000;
	conf->telemetry.webhook_timeout_ms = 5000;
	conf->telemetry.webhook_retries = 3;
	conf->telemetry.webhook_queue = 1000;
	conf->telemetry.alert_threshold = 5;
	conf->telemetry.alert_window_ms = 10 * 60 * 1000;
	conf->telemetry.alert_clear_ms = 60 * 60 * 1000;
}

void cf_telemetry_free(struct bw_conf *conf)
{
	free(conf->telemetry.query_log);
	free(conf->telemetry.events_file);
	free(conf->telemetry.webhook_url);
	for (size_t i = 0; i < conf->telemetry.n_alert_categories; i++)
		free(conf->telemetry.alert_categories[i]);
	free(conf->telemetry.alert_categories);
}

static int parse_webhook(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"url", "timeout", "retries", "queue", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;

	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "webhook")) ||
	    (rc = cf_check_keys(c, m, "telemetry.events.webhook", keys)))
		return rc;
	if ((rc = cf_need(c, m, "url", "telemetry.events.webhook", &v)))
		return rc;
	if ((rc = cf_get_string(c, v, "url", &conf->telemetry.webhook_url)))
		return rc;
	if (strncmp(conf->telemetry.webhook_url, "http://", 7) != 0 &&
	    strncmp(conf->telemetry.webhook_url, "https://", 8) != 0)
		return cf_fail_at(c, v, BW_EINVAL, "'url' must start with http:// or https://");
	if ((v = cf_get(c, m, "timeout")) &&
	    (rc = cf_get_duration_ms32(c, v, "timeout", 100, 600000,
				       &conf->telemetry.webhook_timeout_ms)))
		return rc;
	if ((v = cf_get(c, m, "retries")) &&
	    (rc = cf_get_unsigned(c, v, "retries", 0, 100, &conf->telemetry.webhook_retries)))
		return rc;
	if ((v = cf_get(c, m, "queue")) &&
	    (rc = cf_get_unsigned(c, v, "queue", 1, 1000000, &conf->telemetry.webhook_queue)))
		return rc;
	return 0;
}

static int parse_events(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"file", "syslog", "webhook", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;

	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "events")) ||
	    (rc = cf_check_keys(c, m, "telemetry.events", keys)))
		return rc;
	if ((v = cf_get(c, m, "file")) &&
	    (rc = cf_get_path(c, v, "file", &conf->telemetry.events_file)))
		return rc;
	if ((v = cf_get(c, m, "syslog")) &&
	    (rc = cf_get_bool(c, v, "syslog", &conf->telemetry.events_syslog)))
		return rc;
	if ((v = cf_get(c, m, "webhook")) && (rc = parse_webhook(c, v)))
		return rc;
	return 0;
}

static int parse_spool(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"size", "stop-wait", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;

	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "spool")) ||
	    (rc = cf_check_keys(c, m, "telemetry.spool", keys)))
		return rc;
	if ((v = cf_get(c, m, "size"))) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "size", &s)))
			return rc;
		if (bw_parse_size(s, &conf->telemetry.spool_size) ||
		    conf->telemetry.spool_size < (1u << 20) ||
		    conf->telemetry.spool_size > (1ULL << 40))
			return cf_fail_at(
			    c, v, BW_EINVAL,
			    "expected a size from 1M to 1024G for 'size' (a number of "
			    "bytes with K, M or G, e.g. 1G), found '%s'",
			    s);
	}
	if ((v = cf_get(c, m, "stop-wait")) &&
	    (rc = cf_get_duration_ms32(c, v, "stop-wait", 0, 3600 * 1000,
				       &conf->telemetry.spool_stop_wait_ms)))
		return rc;
	return 0;
}

static int parse_alerts(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"categories", "threshold", "window", "clear-after",
					   NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc;

	if ((rc = cf_want_type(c, m, YAML_MAPPING_NODE, "alerts")) ||
	    (rc = cf_check_keys(c, m, "telemetry.alerts", keys)))
		return rc;
	if ((v = cf_get(c, m, "categories"))) {
		if ((rc = cf_want_type(c, v, YAML_SEQUENCE_NODE, "categories")))
			return rc;
		size_t n = cf_seq_len(v);
		conf->telemetry.alert_categories = calloc(n ? n : 1, sizeof(char *));
		if (!conf->telemetry.alert_categories)
			return cf_nomem(c);
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *it = cf_seq_item(c, v, i);
			char *s = NULL;
			if ((rc = cf_get_string(c, it, "categories", &s)))
				return rc;
			conf->telemetry.alert_categories[conf->telemetry.n_alert_categories++] = s;
			if (!cf_ident_ok(s))
				return cf_fail_at(
				    c, it, BW_EINVAL,
				    "category '%s': use letters, digits, '_', '.', '-'", s);
		}
	}
	if ((v = cf_get(c, m, "threshold")) &&
	    (rc = cf_get_unsigned(c, v, "threshold", 1, 1000, &conf->telemetry.alert_threshold)))
		return rc;
	if ((v = cf_get(c, m, "window")) &&
	    (rc = cf_get_duration_ms(c, v, "window", 1000, 7 * DAY_MS,
				     &conf->telemetry.alert_window_ms)))
		return rc;
	if ((v = cf_get(c, m, "clear-after")) &&
	    (rc = cf_get_duration_ms(c, v, "clear-after", 1000, 30 * DAY_MS,
				     &conf->telemetry.alert_clear_ms)))
		return rc;
	return 0;
}

int cf_parse_telemetry(struct cf_ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"privacy", "query-log", "retention", "ring-size",
					   "spool",   "events",	   "alerts",	NULL};
	static const char *const modes[] = {"none", "blocked-only", "anonymized", "full", NULL};
	struct bw_conf *conf = c->conf;
	yaml_node_t *v;
	int rc, mode;

	if ((rc = cf_check_keys(c, m, "telemetry", keys)))
		return rc;
	if ((v = cf_get(c, m, "privacy"))) {
		if ((rc = cf_get_enum(c, v, "privacy", modes, &mode)))
			return rc;
		conf->telemetry.privacy = (enum bw_privacy)mode;
	}
	if ((v = cf_get(c, m, "query-log"))) {
		const char *s;
		if ((rc = cf_want_scalar(c, v, "query-log", &s)))
			return rc;
		if (!strcmp(s, "off") || !strcmp(s, "false")) {
			conf->telemetry.query_log_off = true;
		} else if ((rc = cf_get_path(c, v, "query-log", &conf->telemetry.query_log))) {
			return rc;
		}
	}
	if ((v = cf_get(c, m, "retention")) &&
	    (rc = cf_get_duration_ms(c, v, "retention", 60 * 1000, 3660 * DAY_MS,
				     &conf->telemetry.retention_ms)))
		return rc;
	if ((v = cf_get(c, m, "ring-size"))) {
		if ((rc = cf_get_unsigned(c, v, "ring-size", 64, 1u << 22,
					  &conf->telemetry.ring_size)))
			return rc;
		unsigned p = 64;
		while (p < conf->telemetry.ring_size)
			p <<= 1;
		conf->telemetry.ring_size = p; /* rounded up to a power of two */
	}
	if ((v = cf_get(c, m, "spool")) && (rc = parse_spool(c, v)))
		return rc;
	if ((v = cf_get(c, m, "events")) && (rc = parse_events(c, v)))
		return rc;
	if ((v = cf_get(c, m, "alerts")) && (rc = parse_alerts(c, v)))
		return rc;
	return 0;
}
