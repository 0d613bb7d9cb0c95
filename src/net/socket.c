/* net/socket.c - listening sockets for UDP and TCP. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "net/net.h"

static int open_bound(const struct bw_listen *l, int type, bool reuseport)
{
	int fam = l->addr.ss_family;
	int fd = socket(fam, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	/* TCP: rebind despite TIME_WAIT. Not for UDP, where it would let two sockets share
	 * an address without SO_REUSEPORT's consent */
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0)
		goto fail;
	return fd;
fail:;
	int e = errno;
	close(fd);
	return -e;
}

/* SO_REUSEPORT lets a second process (another bulwark started by mistake) bind the same
 * port and silently take half of the queries. Binding once without it first fails with
 * EADDRINUSE when anyone else holds the address. */
static int probe_free(const struct bw_listen *l, int type)
{
	int fd = open_bound(l, type, false);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int bw_net_udp_socket(const struct bw_listen *l, bool reuseport, bool probe)
{
	if (probe) {
		int rc = probe_free(l, SOCK_DGRAM);
		if (rc < 0)
			return rc;
	}
	int fd = open_bound(l, SOCK_DGRAM, reuseport);
	if (fd < 0)
		return fd;
	/* room for bursts: 4 MiB each way (capped by net.core.[rw]mem_max unless root) */
	int sz = 4 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	/* answers never need fragmenting: we cap UDP answers at the client's size */
	if (l->addr.ss_family == AF_INET) {
		int pmtu = IP_PMTUDISC_OMIT;
		(void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
	}
	return fd;
}

int bw_net_tcp_socket(const struct bw_listen *l, bool reuseport, bool probe, int backlog)
{
	if (probe) {
		int rc = probe_free(l, SOCK_STREAM);
		if (rc < 0)
			return rc;
	}
	int fd = open_bound(l, SOCK_STREAM, reuseport);
	if (fd < 0)
		return fd;
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int qlen = 5; /* TCP Fast Open, RFC 7766 section 6.2.2 */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen));
	if (listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}
