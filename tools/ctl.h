/*
 * tools/ctl.h - bulwarkctl's parts, shared between its files:
 *   bulwarkctl.c        the command line and the daemon's control socket
 *   ctl_client.c        `bulwarkctl client add|remove|list|setup` (named clients, issue 18)
 *   ctl_clients_file.c  the clients file: read, one entry added or removed, written safely
 *   ctl_setup.c         what a device needs: URLs, the Apple profile, the QR code
 *   ctl_token.c         `bulwarkctl token create|list|revoke` (the API's tokens, issue 16)
 *   ctl_check.c         `bulwarkctl check-config FILE`: the daemon checks a config
 *   ctl_text.c          pure helpers (ClientIDs, names, XML escaping, UUIDs), unit-tested
 *
 * bulwarkctl is one short-lived process: nothing here is thread-safe, nothing is kept
 * between calls but what the caller holds. Functions print their own errors to stderr
 * ("bulwarkctl: ...") and return an exit status (0 done, 1 refused or failed, 2 bad
 * command line, 3 the daemon unreachable) unless they say otherwise.
 */
#ifndef BW_CTL_H
#define BW_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct bw_conf;

/* ---- bulwarkctl.c ---- */
/* Sends one request line ("status\n") to the control socket at path and returns the
 * daemon's answer as JSON, or NULL: *unreachable is set when nothing listens there (no
 * message printed then), else the problem was printed. */
json_t *ctl_request(const char *path, const char *line, long timeout_s, bool *unreachable);
/* Prints a {"columns", "rows"} table (or a message, or JSON) as the daemon's commands do. */
void ctl_print_result(json_t *r);

/* ---- ctl_check.c ---- */
/* `bulwarkctl check-config FILE|-`: the daemon at socket_path loads FILE's text as a config
 * (nothing applied); prints the outcome. 0 valid, 1 invalid or refused, 2 the file cannot
 * be read or is over 64 KiB, 3 unreachable. */
int ctl_check_config(const char *socket_path, const char *file, bool json, long timeout_s);

/* ---- ctl_client.c ---- */
struct ctl_opts {
	const char *config; /* -c, or NULL: BW_CONF_DEFAULT_PATH */
	const char *socket; /* -s, or NULL: the config's control socket */
	bool json;          /* -j */
	long timeout_s;     /* -t */
};
/* `bulwarkctl client ...`: argv[0] is "client". */
int ctl_client_main(const struct ctl_opts *o, int argc, char **argv);
/* syslog authpriv.notice "KIND WHAT: 'NAME' [LABEL VALUE] by uid N (USER) [via sudo from
 * U]": who changed what (value NULL: no label). */
void ctl_audit(const char *kind, const char *what, const char *name, const char *label,
	       const char *value);

/* ---- ctl_token.c ---- */
/* `bulwarkctl token ...`: argv[0] is "token". */
int ctl_token_main(const struct ctl_opts *o, int argc, char **argv);

/* ---- ctl_clients_file.c ---- */
/* A new entry of the clients file. */
struct ctl_entry {
	const char *name;
	const char *id;        /* the ClientID, written as match "id:ID" */
	const char *profile;   /* or NULL */
	const char *const *nets; /* further match items (addresses, networks) */
	size_t n_nets;
};
/* Appends e to conf's clients file, or removes the entry named `remove` (e NULL), then
 * checks that config_path still loads and puts the old file back if it does not. The file
 * is replaced atomically (a temporary file in its directory, fsync, rename), mode 0640,
 * owned as the old file or, for a new one, by the config's owner and the daemon's group. */
int ctl_clients_file_edit(const struct bw_conf *conf, const char *config_path,
			  const struct ctl_entry *e, const char *remove);

/* When the config names a clients-file that does not exist (the loader refuses that, as
 * a typo, while `client add` is about to make it), creates it empty: its path (heap), to
 * remove if the add fails, or NULL when there was nothing to create. */
char *ctl_clients_file_create(const char *config_path);

/* ---- ctl_setup.c ---- */
struct ctl_setup_opts {
	const char *host;         /* --host, or NULL: the listeners' tls-name */
	const char *mobileconfig; /* --mobileconfig FILE, or NULL */
	const char *sign_cert, *sign_key; /* --sign-cert, --sign-key: sign it (CMS) */
	const char *qr;           /* --qr FILE.png, "-" for the terminal, or NULL */
	bool json;
};
/* `client setup`: the client's DoH URL and DoT host name, how to use them, and the files
 * asked for. */
int ctl_setup(const struct bw_conf *conf, const char *name, const struct ctl_setup_opts *o);

/* ---- ctl_text.c: no I/O but getrandom; every function is unit-tested ---- */
#define CTL_ID_LEN 26 /* 128 random bits in base32: ceil(128 / 5) characters */
/* bytes as lower-case base32 (RFC 4648 alphabet a-z 2-7, no padding) into out, which has
 * room for ceil(8 * n / 5) + 1 bytes. Returns the length written. */
size_t ctl_base32(const unsigned char *bytes, size_t n, char *out);
/* A new ClientID: 128 bits from getrandom(2) as 26 base32 characters. 0, or -1 (errno). */
int ctl_id_new(char out[CTL_ID_LEN + 1]);
/* (A client's name is checked by conf's bw_conf_client_name_problem, as the loader does.) */
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
