/*
 * tools/ctl_setup.c - `bulwarkctl client setup NAME`: what a person needs to point a
 * device at its ClientID. The DoH URL https://TLS-NAME[:PORT]/PATH/ID and the DoT host name
 * ID.TLS-NAME (the daemon knows the client by either), how each system takes them, and on
 * request an Apple configuration profile (an XML plist, or CMS-signed DER with OpenSSL) and
 * a QR code of the DoH URL (libqrencode; the PNG is written with zlib, which is linked
 * anyway: a 1-bit greyscale PNG is four chunks, no reason for libpng).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "conf/conf.h"
#include "ctl.h"

/* Where the client reaches the daemon. */
struct endpoints {
	const char *host;     /* the TLS name (or --host) */
	bool doh, dot;        /* a listener of that kind (or assumed behind --host) */
	unsigned doh_port, dot_port;
	const char *doh_path; /* the first path the DoH listener serves */
	char doh_url[512], dot_host[320];
};

/* The first DoH and DoT listeners; the host: --host, else the first tls-name of an
 * encrypted listener (DoH first). 0, or 1 with the reason printed. */
static int find_endpoints(const struct bw_conf *conf, const char *host, struct endpoints *ep)
{
	memset(ep, 0, sizeof(*ep));
	const char *doh_name = NULL, *dot_name = NULL;
	for (size_t i = 0; i < conf->server.n_listen; i++) {
		const struct bw_listen *l = &conf->server.listen[i];
		if (l->transport == BW_TRANSPORT_DOH && !ep->doh) {
			ep->doh = true, ep->doh_port = l->port, doh_name = l->tls_name;
			ep->doh_path = l->n_doh_paths ? l->doh_paths[0].name : "/dns-query";
		} else if (l->transport == BW_TRANSPORT_DOT && !ep->dot) {
			ep->dot = true, ep->dot_port = l->port, dot_name = l->tls_name;
		}
	}
	ep->host = host ? host : doh_name ? doh_name : dot_name;
	if (!ep->doh && !ep->dot && !host) {
		fprintf(stderr, "bulwarkctl: %s has no DoT or DoH listener, so no device can reach "
				"it by ClientID: add one (docs/config.md, \"Encrypted listeners\") or "
				"name the TLS proxy in front with --host\n", conf->path);
		return 1;
	}
	if (!ep->host) {
		fprintf(stderr, "bulwarkctl: no DoT or DoH listener of %s has a tls-name: set it "
				"(the name the certificate is for) or give --host\n", conf->path);
		return 1;
	}
	if (!ep->doh && !ep->dot) /* --host names a TLS proxy on the standard ports */
		ep->doh = ep->dot = true, ep->doh_port = 443, ep->dot_port = 853,
		ep->doh_path = "/dns-query";
	return 0;
}

static void build_urls(struct endpoints *ep, const char *id)
{
	char port[8] = "";
	if (ep->doh && ep->doh_port != 443)
		snprintf(port, sizeof(port), ":%u", ep->doh_port);
	if (ep->doh)
		snprintf(ep->doh_url, sizeof(ep->doh_url), "https://%s%s%s/%s", ep->host, port,
			 ep->doh_path, id);
	if (ep->dot)
		snprintf(ep->dot_host, sizeof(ep->dot_host), "%s.%s", id, ep->host);
}

/* ---- the text for a person ---- */

static void print_howto(const struct bw_client_conf *cl, const char *profile,
			const struct endpoints *ep)
{
	printf("Client '%s' (profile %s)\n\n", cl->name, profile);
	if (ep->doh)
		printf("  DoH URL:        %s\n", ep->doh_url);
	if (ep->dot)
		printf("  DoT host name:  %s%s\n", ep->dot_host,
		       ep->dot_port == 853 ? "" : " (port below)");
	if (ep->dot && ep->dot_port != 853)
		printf("  DoT port:       %u (Android only uses 853: give this listener port 853 "
		       "or forward 853 to it)\n", ep->dot_port);
	puts("\nThe ID in them is this device's key to the resolver: send it privately, and"
	     "\nrevoke it with `bulwarkctl client remove` if the device is lost.\n");
	if (ep->dot)
		printf("Android 9 and later (DNS over TLS, port 853):\n"
		       "  Settings > Network & internet > Private DNS > Private DNS provider host "
		       "name:\n    %s\n", ep->dot_host);
	printf("iOS, iPadOS and macOS: install a configuration profile made with\n"
	       "  bulwarkctl client setup \"%s\" --mobileconfig FILE.mobileconfig\n"
	       "  (open it on the device, then Settings > General > VPN & Device "
	       "Management;\n  macOS: System Settings > Privacy & Security > Profiles)\n",
	       cl->name);
	if (ep->doh) {
		printf("Windows 11: Settings > Network & internet > (the connection) > DNS server "
		       "assignment >\n  Edit > Manual: the server's IP address, DNS over HTTPS On "
		       "(manual template):\n    %s\n", ep->doh_url);
		printf("Firefox: Settings > Privacy & Security > DNS over HTTPS > Max Protection >\n"
		       "  Choose provider: Custom:\n    %s\n", ep->doh_url);
		printf("Chrome: Settings > Privacy and security > Security > Use secure DNS >\n"
		       "  Select DNS provider: Add custom DNS service provider:\n    %s\n",
		       ep->doh_url);
	}
}

/* ---- the Apple configuration profile ---- */

/* PayloadIdentifier: reverse-DNS-like, the same for the same client and server, so that
 * installing a newer profile replaces the older one. */
static void payload_id(const char *host, const char *name, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "bulwark.%s.", host);
	for (const char *s = name; *s && n + 1 < cap; s++)
		out[n++] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
				   (*s >= '0' && *s <= '9') || *s == '-'
			       ? *s
			       : '-';
	if (n < cap)
		out[n] = 0;
}

/* The profile as an XML plist (every string escaped): a heap string, or NULL. */
static char *plist_text(const struct bw_client_conf *cl, const struct endpoints *ep)
{
	char ident[300], u1[37], u2[37];
	payload_id(ep->host, cl->name, ident, sizeof(ident));
	if (ctl_uuid_new(u1) || ctl_uuid_new(u2))
		return NULL;
	bool https = ep->doh;
	char *name = ctl_xml_escape(cl->name), *host = ctl_xml_escape(ep->host);
	char *server = ctl_xml_escape(https ? ep->doh_url : ep->dot_host);
	char *id = ctl_xml_escape(ident), *out = NULL;
	if (name && host && server && id &&
	    asprintf(&out,
		     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		     "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		     "<plist version=\"1.0\">\n<dict>\n"
		     "\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n"
		     "\t\t\t<key>DNSSettings</key>\n\t\t\t<dict>\n"
		     "\t\t\t\t<key>DNSProtocol</key>\n\t\t\t\t<string>%s</string>\n"
		     "\t\t\t\t<key>%s</key>\n\t\t\t\t<string>%s</string>\n"
		     "\t\t\t</dict>\n"
		     "\t\t\t<key>PayloadDisplayName</key>\n\t\t\t<string>Bulwark DNS (%s)</string>\n"
		     "\t\t\t<key>PayloadIdentifier</key>\n\t\t\t<string>%s.dns</string>\n"
		     "\t\t\t<key>PayloadType</key>\n"
		     "\t\t\t<string>com.apple.dnsSettings.managed</string>\n"
		     "\t\t\t<key>PayloadUUID</key>\n\t\t\t<string>%s</string>\n"
		     "\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n"
		     "\t\t</dict>\n\t</array>\n"
		     "\t<key>PayloadDescription</key>\n\t<string>Encrypted DNS through the Bulwark "
		     "protective resolver %s for %s. It blocks phishing, malware and other threats."
		     "</string>\n"
		     "\t<key>PayloadDisplayName</key>\n\t<string>Bulwark DNS: %s</string>\n"
		     "\t<key>PayloadIdentifier</key>\n\t<string>%s</string>\n"
		     "\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n"
		     "\t<key>PayloadType</key>\n\t<string>Configuration</string>\n"
		     "\t<key>PayloadUUID</key>\n\t<string>%s</string>\n"
		     "\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n"
		     "</dict>\n</plist>\n",
		     https ? "HTTPS" : "TLS", https ? "ServerURL" : "ServerName", server, host, id,
		     u1, host, name, name, id, u2) < 0)
		out = NULL;
	free(name), free(host), free(server), free(id);
	return out;
}

static int write_file(const char *path, const void *data, size_t len)
{
	/* 0600: the profile and the QR code hold the ClientID */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;
	while (fd >= 0 && done < len) {
		ssize_t n = write(fd, (const char *)data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		done += (size_t)n;
	}
	if (fd < 0 || done < len || close(fd) != 0) {
		fprintf(stderr, "bulwarkctl: cannot write %s: %s\n", path, strerror(errno));
		if (fd >= 0 && done < len)
			close(fd);
		return 1;
	}
	return 0;
}

static void ssl_error(const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "failed";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	fprintf(stderr, "bulwarkctl: %s %s: %s\n", what, path,
		e && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : buf);
}

/* The signer's certificate (first in the PEM file) and the rest of its chain. */
static int read_certs(const char *path, X509 **signer, STACK_OF(X509) **chain)
{
	BIO *in = BIO_new_file(path, "r");
	X509 *x;
	if (!in || !(*signer = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
		ssl_error("cannot read a certificate from", path);
		BIO_free(in);
		return 1;
	}
	if (!(*chain = sk_X509_new_null())) {
		BIO_free(in);
		return 1;
	}
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)))
		if (!sk_X509_push(*chain, x))
			X509_free(x);
	ERR_clear_error(); /* the end of the file */
	BIO_free(in);
	return 0;
}

/* The profile signed as CMS SignedData (DER, content attached), as Apple devices take a
 * signed profile: written to path. */
static int write_signed(const char *path, const char *text, const char *cert_path,
			const char *key_path)
{
	X509 *signer = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	BIO *data = NULL, *out = NULL;
	CMS_ContentInfo *cms = NULL;
	int rc = 1;
	if (read_certs(cert_path, &signer, &chain))
		goto out;
	BIO *kin = BIO_new_file(key_path, "r");
	key = kin ? PEM_read_bio_PrivateKey(kin, NULL, NULL, NULL) : NULL;
	BIO_free(kin);
	if (!key) {
		ssl_error("cannot read the private key", key_path);
		goto out;
	}
	data = BIO_new_mem_buf(text, (int)strlen(text));
	cms = data ? CMS_sign(signer, key, chain, data, CMS_BINARY) : NULL;
	if (!cms) {
		ssl_error("cannot sign with", cert_path);
		goto out;
	}
	out = BIO_new(BIO_s_mem());
	char *der;
	long len;
	if (!out || !i2d_CMS_bio(out, cms) || (len = BIO_get_mem_data(out, &der)) <= 0) {
		ssl_error("cannot encode the signed profile", path);
		goto out;
	}
	rc = write_file(path, der, (size_t)len);
out:
	BIO_free(out);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	EVP_PKEY_free(key);
	X509_free(signer);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

static int write_mobileconfig(const struct bw_client_conf *cl, const struct endpoints *ep,
			      const struct ctl_setup_opts *o)
{
	char *text = plist_text(cl, ep);
	if (!text) {
		fputs("bulwarkctl: cannot make the profile (out of memory, or a name XML cannot "
		      "hold)\n", stderr);
		return 1;
	}
	int rc = o->sign_cert ? write_signed(o->mobileconfig, text, o->sign_cert, o->sign_key)
			      : write_file(o->mobileconfig, text, strlen(text));
	free(text);
	return rc;
}

/* ---- the QR code ---- */

#define QR_BORDER 4 /* light modules around the code (the quiet zone) */
#define QR_SCALE 8  /* pixels per module in the PNG */

static bool dark(const QRcode *qr, int x, int y)
{
	return x >= 0 && y >= 0 && x < qr->width && y < qr->width &&
	       (qr->data[y * qr->width + x] & 1);
}

/* Appends one PNG chunk (length, type, data, CRC) to out. */
static unsigned char *png_chunk(unsigned char *out, const char type[4], const unsigned char *d,
				uint32_t len)
{
	uint32_t be = htonl(len);
	memcpy(out, &be, 4);
	memcpy(out + 4, type, 4);
	if (len)
		memcpy(out + 8, d, len);
	be = htonl((uint32_t)crc32(0, out + 4, len + 4));
	memcpy(out + 8 + len, &be, 4);
	return out + 12 + len;
}

/* The QR code as a 1-bit greyscale PNG (IHDR, one IDAT, IEND), written to path. */
static int write_png(const QRcode *qr, const char *path)
{
	uint32_t side = (uint32_t)(qr->width + 2 * QR_BORDER) * QR_SCALE, stride = (side + 7) / 8;
	size_t raw_len = (size_t)side * (stride + 1);
	uLongf z_len = compressBound((uLong)raw_len);
	unsigned char *raw = calloc(raw_len, 1), *z = malloc(z_len);
	unsigned char *png = malloc(z_len + 64), *end = png;
	int rc = 1;
	if (!raw || !z || !png)
		goto out;
	for (uint32_t y = 0; y < side; y++) {
		unsigned char *row = raw + (size_t)y * (stride + 1) + 1; /* row[-1]: filter 0 */
		for (uint32_t x = 0; x < side; x++)
			if (!dark(qr, (int)(x / QR_SCALE) - QR_BORDER, (int)(y / QR_SCALE) - QR_BORDER))
				row[x / 8] |= (unsigned char)(0x80 >> (x % 8)); /* 1 = white */
	}
	if (compress2(z, &z_len, raw, (uLong)raw_len, 9) != Z_OK) {
		fputs("bulwarkctl: cannot compress the PNG\n", stderr);
		goto out;
	}
	unsigned char ihdr[13] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}; /* depth 1, grey */
	uint32_t be = htonl(side);
	memcpy(ihdr, &be, 4);
	memcpy(ihdr + 4, &be, 4);
	memcpy(end, "\x89PNG\r\n\x1a\n", 8);
	end = png_chunk(end + 8, "IHDR", ihdr, sizeof(ihdr));
	end = png_chunk(end, "IDAT", z, (uint32_t)z_len);
	end = png_chunk(end, "IEND", NULL, 0);
	rc = write_file(path, png, (size_t)(end - png));
out:
	if (rc && (!raw || !z || !png))
		fputs("bulwarkctl: out of memory\n", stderr);
	free(raw), free(z), free(png);
	return rc;
}

/* The QR code in the terminal: two modules per character with half blocks, light modules
 * drawn (as on a dark terminal), a quiet zone of two. */
static void print_qr(const QRcode *qr)
{
	static const char *const cell[4] = {"\xe2\x96\x88", "\xe2\x96\x80", "\xe2\x96\x84", " "};
	for (int y = -2; y < qr->width + 2; y += 2) {
		for (int x = -2; x < qr->width + 2; x++)
			fputs(cell[dark(qr, x, y) * 2 + dark(qr, x, y + 1)], stdout);
		putchar('\n');
	}
}

static int qr_out(const char *url, const char *path)
{
	QRcode *qr = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!qr) {
		fprintf(stderr, "bulwarkctl: cannot make the QR code: %s\n", strerror(errno));
		return 1;
	}
	int rc = 0;
	if (!strcmp(path, "-"))
		print_qr(qr);
	else
		rc = write_png(qr, path);
	QRcode_free(qr);
	return rc;
}

/* ---- the command ---- */

static void print_json(const struct bw_client_conf *cl, const char *profile,
		       const struct endpoints *ep, const struct ctl_setup_opts *o)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "name", cl->name, "profile", profile,
			      "tls_name", ep->host);
	if (ep->doh) {
		json_object_set_new(j, "doh_url", json_string(ep->doh_url));
		json_object_set_new(j, "doh_port", json_integer(ep->doh_port));
	}
	if (ep->dot) {
		json_object_set_new(j, "dot_host", json_string(ep->dot_host));
		json_object_set_new(j, "dot_port", json_integer(ep->dot_port));
	}
	if (o->mobileconfig)
		json_object_set_new(j, "mobileconfig", json_string(o->mobileconfig));
	if (o->qr)
		json_object_set_new(j, "qr", json_string(o->qr));
	char *t = json_dumps(j, JSON_INDENT(2));
	printf("%s\n", t ? t : "{}");
	free(t);
	json_decref(j);
}

int ctl_setup(const struct bw_conf *conf, const char *name, const struct ctl_setup_opts *o)
{
	const struct bw_client_conf *cl = NULL;
	for (size_t i = 0; i < conf->clients.n && !cl; i++)
		if (!strcmp(conf->clients.list[i].name, name))
			cl = &conf->clients.list[i];
	if (!cl) {
		fprintf(stderr, "bulwarkctl: no client named '%s' (bulwarkctl client list)\n", name);
		return 1;
	}
	if (!cl->n_ids) {
		fprintf(stderr, "bulwarkctl: client '%s' has no ClientID (match: id:...), so a "
				"roaming device cannot be known as it; `bulwarkctl client add` makes "
				"clients with one\n", name);
		return 1;
	}
	struct endpoints ep;
	if (find_endpoints(conf, o->host, &ep))
		return 1;
	build_urls(&ep, cl->ids[0]);
	if (o->qr && !ep.doh) {
		fputs("bulwarkctl: --qr encodes the DoH URL, and there is no DoH listener\n", stderr);
		return 1;
	}
	const char *profile = cl->profile >= 0 ? conf->policy.profiles[cl->profile].name
					       : "chosen by the listener or network";
	if (o->mobileconfig && write_mobileconfig(cl, &ep, o))
		return 1;
	if (o->qr && strcmp(o->qr, "-") && qr_out(ep.doh_url, o->qr))
		return 1;
	if (o->json) {
		print_json(cl, profile, &ep, o);
		return 0;
	}
	print_howto(cl, profile, &ep);
	if (o->mobileconfig)
		printf("\nWrote %s (%s): open it on the iPhone, iPad or Mac.\n", o->mobileconfig,
		       o->sign_cert ? "signed" : "unsigned");
	if (o->qr && strcmp(o->qr, "-"))
		printf("Wrote %s: a QR code of the DoH URL.\n", o->qr);
	if (o->qr && !strcmp(o->qr, "-")) {
		puts("\nThe DoH URL as a QR code:");
		return qr_out(ep.doh_url, "-");
	}
	return 0;
}
