/*
 * core/privs.c - giving up root once the listeners are bound (docs/config.md,
 * server.user). Started as root, the daemon binds every listener (53, 853, 443), reads
 * its certificates and feeds, then becomes server.user: supplementary groups dropped,
 * the group then the user set, no capability left (a reload cannot bind a new port:
 * listeners take effect at the next start anyway), and no_new_privs so that nothing it
 * runs can gain any. The state directory (and the control socket's) is handed to the user
 * first, since the daemon writes there. What is read after the drop (feed files and
 * certificates at a reload; the resolver's root hints, trust anchor and CA bundle, which
 * libunbound reads in the workers) is then checked for the user: a file it could not read
 * is named at start, not at the first reload or query that fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	/* only what root made: a file someone else owns is theirs to hand over */
	if (st->st_uid == 0 && lchown(path, chown_uid, chown_gid) != 0)
		bw_warn("cannot hand %s to the daemon's user: %s", path, strerror(errno));
	return 0;
}

/* The directory of path (the control socket's), into buf. */
static const char *dir_of(const char *path, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", path);
	char *slash = strrchr(buf, '/');
	if (!slash)
		return ".";
	if (slash == buf)
		slash[1] = 0;
	else
		*slash = 0;
	return buf;
}

/* A file a reload re-reads, as the user: named now when it could not read it. */
static void check_readable(const char *what, const char *path, const char *user)
{
	if (!path)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return;
	}
	if (errno == ENOENT)
		return; /* a fetched feed's first copy, or a file to come: said elsewhere */
	bw_err("%s: %s is not readable by user %s (%s): a reload will keep the running "
	       "version; give the user read access (and search access to its directories)",
	       what, path, user, strerror(errno));
}

static void check_files(const struct bw_conf *conf, const char *user)
{
	char what[128];
	/* libunbound reads these in the workers, after the drop */
	check_readable("resolver.root-hints", conf->resolver.root_hints, user);
	check_readable("resolver.trust-anchor", conf->resolver.trust_anchor, user);
	check_readable("resolver.tls-ca-file", conf->resolver.tls_ca_file, user);
	/* a reload re-reads it: unreadable, a removed (revoked) client would stay */
	check_readable("clients-file", conf->clients.file, user);
	for (size_t i = 0; i < conf->policy.n_feeds; i++) {
		snprintf(what, sizeof(what), "feed %s", conf->policy.feeds[i].name);
		check_readable(what, conf->policy.feeds[i].file, user);
	}
	for (size_t i = 0; i < conf->server.n_listen; i++) {
		const struct bw_listen *l = &conf->server.listen[i];
		snprintf(what, sizeof(what), "listener %s port %u", l->address, l->port);
		check_readable(what, l->tls_cert, user);
		check_readable(what, l->tls_key, user);
	}
}

/* Who to become: 0 with *pw filled, 1 when nobody (stay as we are), or BW_EINVAL. */
static int target(const struct bw_conf *conf, struct passwd **pw, gid_t *gid, char *err,
		  size_t errlen)
{
	const char *user = conf->server.user ? conf->server.user : BW_CONF_DEFAULT_USER;
	if (!strcmp(user, "root")) {
		bw_warn("server.user is root: the daemon keeps every privilege (not recommended)");
		return 1;
	}
	*pw = getpwnam(user);
	if (!*pw) {
		if (conf->server.user) {
			snprintf(err, errlen, "server.user: there is no user '%s'", user);
			return BW_EINVAL;
		}
		bw_warn("running as root: there is no user '%s' to become once the listeners are "
			"bound (the package creates it); create it or set server.user",
			BW_CONF_DEFAULT_USER);
		return 1;
	}
	*gid = (*pw)->pw_gid;
	if (conf->server.group) {
		struct group *gr = getgrnam(conf->server.group);
		if (!gr) {
			snprintf(err, errlen, "server.group: there is no group '%s'",
				 conf->server.group);
			return BW_EINVAL;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

int bw_server_drop_privileges(const struct bw_conf *conf, char *err, size_t errlen)
{
	if (geteuid() != 0)
		return 0; /* nothing to give up */
	struct passwd *pw = NULL;
	gid_t gid = 0;
	int rc = target(conf, &pw, &gid, err, errlen);
	if (rc)
		return rc < 0 ? rc : 0;
	char user[64];
	snprintf(user, sizeof(user), "%s", pw->pw_name);
	uid_t uid = pw->pw_uid;

	/* the state directory (and the control socket's) become the user's */
	chown_uid = uid;
	chown_gid = gid;
	mkdir(conf->server.state_dir, 0750);
	nftw(conf->server.state_dir, chown_one, 16, FTW_PHYS);
	char dir[PATH_MAX];
	if (conf->server.control_socket) {
		dir_of(conf->server.control_socket, dir, sizeof(dir));
		mkdir(dir, 0750);
		struct stat st;
		if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			chown_one(dir, &st, FTW_D, NULL);
	}

	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		snprintf(err, errlen, "cannot become user %s: %s", user, strerror(errno));
		return BW_EIO;
	}
	if (setuid(0) == 0) { /* must not be able to come back */
		snprintf(err, errlen, "still able to become root after dropping to %s", user);
		return BW_EIO;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		bw_warn("cannot set no_new_privs: %s", strerror(errno));
	bw_info("running as user %s (uid %u, gid %u), no capabilities", user, (unsigned)uid,
		(unsigned)gid);
	check_files(conf, user);
	return 0;
}

/* Every upstream query in flight holds a socket (libunbound opens one for each, up to its
 * outgoing-range: bw_outgoing_range()), and so does every stream connection: the workers
 * may hold nworkers * (outgoing-range + tcp-max-connections per stream listener) at
 * once, 5,120 each by default. A shell's soft limit is often 1,024: past it, accept() and
 * libunbound's socket() fail, and cache misses become SERVFAIL under exactly the load the
 * limits were sized for. The soft limit is
 * raised to what may be needed, with the hard limit too while root may; the daemon says
 * so when it cannot. Before the privilege drop. */
void bw_server_raise_fd_limit(const struct bw_conf *conf, unsigned nworkers)
{
	rlim_t streams = conf->server.n_listen; /* each has TCP (DNS), or is DoT or DoH */
	rlim_t want =
	    (rlim_t)nworkers * (bw_outgoing_range(conf) + streams * bw_tcp_max_conns(conf)) + 1024;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= want)
		return;
	struct rlimit up = {want, rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? want
										     : rl.rlim_max};
	if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
		bw_info("open files: limit raised from %llu to %llu (server.workers * "
			"(max-inflight, at least 4096, + tcp-max-connections per listener))",
			(unsigned long long)rl.rlim_cur, (unsigned long long)want);
		return;
	}
	up = (struct rlimit){rl.rlim_max, rl.rlim_max};
	if (rl.rlim_max > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0)
		rl.rlim_cur = rl.rlim_max;
	bw_warn("open files: the limit is %llu, but %u worker%s may hold %llu sockets at once "
		"(server.max-inflight and tcp-max-connections): raise it (systemd "
		"LimitNOFILE=, ulimit -n) or lower those",
		(unsigned long long)rl.rlim_cur, nworkers, nworkers == 1 ? "" : "s",
		(unsigned long long)want);
}
