/*
 * tools/ctl.h - bulwarkctl's parts, shared between its files:
 *   bulwarkctl.c        the command line and the daemon's control socket
 *   ctl_text.c          pure helpers (ClientIDs, names, XML escaping, UUIDs), unit-tested
 *
 * bulwarkctl is one short-lived process: nothing here is thread-safe, nothing is kept
 * between calls but what the caller holds.
 */
#ifndef BW_CTL_H
#define BW_CTL_H

#include <stdbool.h>
#include <stddef.h>

/* ---- ctl_text.c: no I/O but getrandom; every function is unit-tested ---- */
#define CTL_ID_LEN 26 /* 128 random bits in base32: ceil(128 / 5) characters */
/* bytes as lower-case base32 (RFC 4648 alphabet a-z 2-7, no padding) into out, which has
 * room for ceil(8 * n / 5) + 1 bytes. Returns the length written. */
size_t ctl_base32(const unsigned char *bytes, size_t n, char *out);
/* A new ClientID: 128 bits from getrandom(2) as 26 base32 characters. 0, or -1 (errno). */
int ctl_id_new(char out[CTL_ID_LEN + 1]);
/* Why name cannot be a client's name (the rules of conf_clients.c: 1 to 64 bytes, no
 * control characters, double quotes, backslash or '/', no space at either end), or NULL. */
const char *ctl_name_problem(const char *name);
/* A host name for --host: labels of letters, digits and '-' joined by dots, at most 253
 * bytes, so that it goes into a URL and a TLS name as it is. */
bool ctl_host_ok(const char *host);
/* A ClientID as `client list` shows it: its first 4 characters and "…". */
void ctl_id_mask(const char *id, char *out, size_t cap);
/* s with & < > " ' as XML entities: a heap string, or NULL (out of memory, or s holds a
 * control character that XML 1.0 cannot carry). */
char *ctl_xml_escape(const char *s);
/* A random (version 4) UUID, upper-case as Apple's profiles write them. 0, or -1. */
int ctl_uuid_new(char out[37]);

#endif
