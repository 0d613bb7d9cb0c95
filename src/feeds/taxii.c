/*
 * feeds/taxii.c - TAXII 2.1 (OASIS TAXII Version 2.1, section 3.7 envelope): parses the
 * objects endpoint's answer (untrusted bytes: size-capped, every field type-checked) and
 * merges the objects into the feed's STIX bundle, newest version of each id kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/feeds.h"
#include "policy/rules.h"

int bw_taxii_envelope_parse(const char *buf, size_t len, json_t **objects, bool *more,
			    char *next, size_t nextlen, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *o, *m, *n;

	*objects = NULL;
	*more = false;
	if (nextlen)
		next[0] = 0;
	if (len > BW_JSON_FEED_MAX) {
		snprintf(err, errlen, "envelope larger than %zu bytes", BW_JSON_FEED_MAX);
		return BW_EMALFORMED;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "not JSON: line %d: %.100s", jerr.line, jerr.text);
		return BW_EMALFORMED;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "not a TAXII envelope (expected an object)");
		goto bad;
	}
	o = json_object_get(root, "objects");
	m = json_object_get(root, "more");
	n = json_object_get(root, "next");
	if (o && !json_is_array(o)) {
		snprintf(err, errlen, "'objects' is not an array");
		goto bad;
	}
	if (m && !json_is_boolean(m)) {
		snprintf(err, errlen, "'more' is not a boolean");
		goto bad;
	}
	if (n && !json_is_string(n)) {
		snprintf(err, errlen, "'next' is not a string");
		goto bad;
	}
	if (n && (json_string_length(n) >= nextlen || strlen(json_string_value(n)) !=
						       json_string_length(n))) {
		snprintf(err, errlen, "'next' is too long or holds a NUL");
		goto bad;
	}
	if (o) {
		size_t i;
		json_t *x;
		json_array_foreach(o, i, x)
		{
			if (!json_is_object(x) || !json_is_string(json_object_get(x, "id")) ||
			    !json_is_string(json_object_get(x, "type"))) {
				snprintf(err, errlen, "object %zu has no string 'id' and 'type'", i);
				goto bad;
			}
		}
	}
	*more = m && json_is_true(m);
	if (n)
		memcpy(next, json_string_value(n), json_string_length(n) + 1);
	*objects = o ? json_incref(o) : json_array();
	json_decref(root);
	if (!*objects) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	return 0;
bad:
	json_decref(root);
	return BW_EMALFORMED;
}

/* Is a newer than b ("modified", RFC 3339 UTC timestamps compare as text)? Missing = old. */
static bool not_older(json_t *a, json_t *b)
{
	const char *ma = json_string_value(json_object_get(a, "modified"));
	const char *mb = json_string_value(json_object_get(b, "modified"));
	if (!ma || !mb)
		return true;
	return strcmp(ma, mb) >= 0;
}

char *bw_taxii_merge(const char *old, size_t oldlen, json_t *objects, size_t *outlen)
{
	json_t *bundle = NULL, *list, *index = json_object();
	char *text = NULL;
	size_t i;
	json_t *x;

	if (!index)
		return NULL;
	if (old && oldlen) {
		json_error_t jerr;
		bundle = json_loadb(old, oldlen, 0, &jerr);
		if (!bundle || !json_is_object(bundle) ||
		    !json_is_array(json_object_get(bundle, "objects")))
			goto out;
	} else {
		bundle = json_pack("{s:s, s:s, s:[]}", "type", "bundle", "id",
				   "bundle--00000000-0000-4000-8000-000000000000", "objects");
		if (!bundle)
			goto out;
	}
	list = json_object_get(bundle, "objects");
	json_array_foreach(list, i, x)
	{
		const char *id = json_string_value(json_object_get(x, "id"));
		if (id && json_object_set_new(index, id, json_integer((json_int_t)i)))
			goto out;
	}
	json_array_foreach(objects, i, x)
	{
		const char *id = json_string_value(json_object_get(x, "id"));
		if (!id)
			continue;
		json_t *at = json_object_get(index, id);
		if (at) {
			size_t k = (size_t)json_integer_value(at);
			if (not_older(x, json_array_get(list, k)) && json_array_set(list, k, x))
				goto out;
			continue;
		}
		if (json_object_set_new(index, id, json_integer((json_int_t)json_array_size(list))) ||
		    json_array_append(list, x))
			goto out;
	}
	text = json_dumps(bundle, JSON_COMPACT);
	if (text)
		*outlen = strlen(text);
out:
	json_decref(bundle);
	json_decref(index);
	return text;
}
