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
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
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

int bw_net_udp_socket(const struct bw_listen *l, bool reuseport)
{
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

int bw_net_tcp_socket(const struct bw_listen *l, bool reuseport, int backlog)
{
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
