/*
 * policy/parse_misp.c - MISP events -> rules.
 *
 * Input: one event {"Event": {...}}, a bare event {"info":..., "Attribute": [...]}, the API
 * export {"response": [{"Event": {...}}, ...]} (several events; a "response" object, as
 * attribute searches return, is read as one event), or a bare array of events.
 * Attributes are read from Event.Attribute[] and Event.Object[].Attribute[] (rep->units
 * counts them). An attribute is used only when to_ids is set (true, 1, "1" or "true"), or
 * with `non_ids` (the feed's misp-include-non-ids) whatever to_ids says, and when it is not
 * deleted (nor its object). An event that gives no rule only because none of its blockable
 * attributes has to_ids is warned about (with a label) and counted in rep->no_ids_events:
 * a feed exported without the IDS flags would otherwise load as silently empty. Types used: "domain", "hostname" (QNAME + WILDCARD),
 * "url" (its host), "domain|ip" (both parts), "ip-dst" and "ip-dst|port" (RESPONSE_IP);
 * every other type (hashes, file names, "ip-src", "text", ...) is skipped and counted.
 * rule.ref is the attribute's uuid, rule.title the event's "info"; `where` in reports is the
 * attribute's number in document order, from 0.
 *
 * JSON loading follows parse_stix.c (size cap, JSON_ALLOW_NUL, last duplicate key wins).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "policy/rules.h"

struct misp {
	const char *label;
	bw_rule_sink sink;
	void *ctx;
	struct bw_parse_report *rep;
	bool non_ids; /* use attributes without to_ids too */
	/* the current event: attributes with to_ids, blockable ones without */
	size_t ev_ids, ev_non_ids;
};

/* MISP writes booleans as true, 1, "1" (older exports) or "true". */
static bool truthy(json_t *v)
{
	if (json_is_true(v))
		return true;
	if (json_is_integer(v))
		return json_integer_value(v) == 1;
	if (json_is_string(v))
		return !strcmp(json_string_value(v), "1") || !strcmp(json_string_value(v), "true");
	return false;
}

/* The types this parser turns into rules. */
static bool blockable(const char *type)
{
	static const char *const types[] = {"domain", "hostname", "url", "ip-dst", "domain|ip",
					    "ip-dst|port"};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (!strcmp(type, types[i]))
			return true;
	}
	return false;
}

static void bad(struct misp *m, const char *uuid, const char *what, const char *val, size_t vlen)
{
	char msg[160];

	if (val)
		snprintf(msg, sizeof(msg), "attribute %s: '%.*s': %s", uuid ? uuid : "without uuid",
			 (int)(vlen > 60 ? 60 : vlen), val, what);
	else
		snprintf(msg, sizeof(msg), "attribute %s: %s", uuid ? uuid : "without uuid", what);
	for (char *c = msg; *c; c++) { /* feed text must not forge log lines */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	}
	bw_parse_report_bad(m->rep, m->label, m->rep->units - 1, msg);
}

static int attribute(struct misp *m, json_t *a, const char *title, bool object_deleted)
{
	struct bw_parse_report *rep = m->rep;
	json_t *jt = json_object_get(a, "type"), *jv = json_object_get(a, "value");
	const char *uuid = json_string_value(json_object_get(a, "uuid"));
	const char *type, *val, *bar, *reason = NULL;
	size_t len;
	int r1, r2 = 1;

	rep->units++;
	if (!json_is_object(a)) {
		bad(m, NULL, "not an object", NULL, 0);
		return 0;
	}
	if (object_deleted || truthy(json_object_get(a, "deleted"))) {
		rep->skipped++;
		return 0;
	}
	if (truthy(json_object_get(a, "to_ids"))) {
		m->ev_ids++;
	} else {
		if (json_is_string(jt) && blockable(json_string_value(jt)))
			m->ev_non_ids++;
		if (!m->non_ids) {
			rep->skipped++;
			return 0;
		}
	}
	if (!json_is_string(jt) || !json_is_string(jv)) {
		bad(m, uuid, "no type or value", NULL, 0);
		return 0;
	}
	type = json_string_value(jt);
	val = json_string_value(jv);
	len = json_string_length(jv);
	if (!strcmp(type, "domain") || !strcmp(type, "hostname")) {
		r1 = bw_rule_emit_ioc(BW_IOC_DOMAIN, val, len, uuid, title, m->sink, m->ctx, rep,
				      &reason);
	} else if (!strcmp(type, "url")) {
		r1 = bw_rule_emit_ioc(BW_IOC_URL, val, len, uuid, title, m->sink, m->ctx, rep,
				      &reason);
	} else if (!strcmp(type, "ip-dst")) {
		r1 = bw_rule_emit_ioc(BW_IOC_IP, val, len, uuid, title, m->sink, m->ctx, rep,
				      &reason);
	} else if (!strcmp(type, "domain|ip") || !strcmp(type, "ip-dst|port")) {
		bool dom = type[0] == 'd';

		bar = memchr(val, '|', len);
		if (!bar) {
			bad(m, uuid, "no '|' in a composite value", val, len);
			return 0;
		}
		r1 = bw_rule_emit_ioc(dom ? BW_IOC_DOMAIN : BW_IOC_IP, val, (size_t)(bar - val),
				      uuid, title, m->sink, m->ctx, rep, &reason);
		if (r1 >= 0 && dom) {
			const char *reason2 = NULL;

			r2 = bw_rule_emit_ioc(BW_IOC_IP, bar + 1, len - (size_t)(bar - val) - 1,
					      uuid, title, m->sink, m->ctx, rep, &reason2);
			if (r2 == 0 && !reason)
				reason = reason2;
		}
	} else {
		rep->skipped++;
		return 0;
	}
	if (r1 < 0)
		return r1;
	if (r2 < 0)
		return r2;
	if (r1 == 0 || r2 == 0)
		bad(m, uuid, reason, val, len);
	return 0;
}

static int attributes(struct misp *m, json_t *list, const char *title, bool deleted)
{
	size_t i;
	json_t *a;
	int rc;

	if (!list)
		return 0;
	if (!json_is_array(list)) {
		bw_parse_report_bad(m->rep, m->label, m->rep->units, "Attribute is not an array");
		return 0;
	}
	json_array_foreach(list, i, a)
	{
		rc = attribute(m, a, title, deleted);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool is_event(json_t *e)
{
	return json_is_object(e) && (json_object_get(e, "Attribute") ||
				     json_object_get(e, "Object") || json_object_get(e, "info"));
}

static int event_attributes(struct misp *m, json_t *e, const char *title)
{
	json_t *objs = json_object_get(e, "Object"), *o;
	size_t i;
	int rc;

	rc = attributes(m, json_object_get(e, "Attribute"), title, false);
	if (rc < 0 || !objs)
		return rc;
	if (!json_is_array(objs)) {
		bw_parse_report_bad(m->rep, m->label, m->rep->units, "Object is not an array");
		return 0;
	}
	json_array_foreach(objs, i, o)
	{
		if (!json_is_object(o)) {
			bw_parse_report_bad(m->rep, m->label, m->rep->units,
					    "object is not an object");
			continue;
		}
		rc = attributes(m, json_object_get(o, "Attribute"), title,
				truthy(json_object_get(o, "deleted")));
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int event(struct misp *m, json_t *e)
{
	const char *title = json_string_value(json_object_get(e, "info"));
	size_t rules = m->rep->rules;

	m->ev_ids = m->ev_non_ids = 0;
	int rc = event_attributes(m, e, title);
	if (rc < 0 || m->rep->rules != rules || m->ev_ids || !m->ev_non_ids)
		return rc;
	m->rep->no_ids_events++;
	if (m->label) {
		char info[64];
		snprintf(info, sizeof(info), "%s", title ? title : "");
		for (char *c = info; *c; c++) { /* feed text must not forge log lines */
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		}
		bw_warn("%s: MISP event '%s': no rules: none of its %zu domain, URL or address "
			"attributes has to_ids set (misp-include-non-ids: true uses them)",
			m->label, info, m->ev_non_ids);
	}
	return 0;
}

/* One element of "response" or of a bare array: {"Event": {...}} or an event. */
static int element(struct misp *m, json_t *el, size_t i)
{
	json_t *ev = json_object_get(el, "Event");

	if (json_is_object(ev))
		return event(m, ev);
	if (is_event(el))
		return event(m, el);
	bw_parse_report_bad(m->rep, m->label, i, "not a MISP event");
	return 0;
}

int bw_parse_misp(const char *buf, size_t len, const char *label, bool non_ids, bw_rule_sink sink,
		  void *ctx, struct bw_parse_report *rep)
{
	struct misp m = {.label = label, .sink = sink, .ctx = ctx, .rep = rep, .non_ids = non_ids};
	json_t *root, *list = NULL, *el;
	size_t i;
	int rc = 0;

	root = bw_json_feed_load(buf, len, label, "MISP", rep);
	if (!root)
		return 0;
	if (json_is_array(root)) {
		list = root;
	} else if (json_is_object(root)) {
		json_t *resp = json_object_get(root, "response");
		json_t *ev = json_object_get(root, "Event");

		if (json_is_array(resp))
			list = resp;
		else if (json_is_object(resp))
			rc = event(&m, resp);
		else if (json_is_object(ev))
			rc = event(&m, ev);
		else if (is_event(root))
			rc = event(&m, root);
		else
			goto broken;
	} else {
		goto broken;
	}
	if (list) {
		json_array_foreach(list, i, el)
		{
			rc = element(&m, el, i);
			if (rc < 0)
				break;
		}
	}
	json_decref(root);
	return rc;

broken:
	rep->broken = true;
	bw_parse_report_bad(rep, label, 0, "not a MISP event, event list or API response");
	json_decref(root);
	return 0;
}
