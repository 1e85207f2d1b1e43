/* attack: an open-loop POST generator for the accept → readable runs of
 * `make bench` (bench/readable follows its results). Request k is due at
 * k / RATE seconds from the start, whatever became of the ones before: it
 * goes out on the first of CONNS keep-alive connections that is free, and
 * its latency counts from when it was due, so time spent waiting for a
 * free connection is the service's too (no coordinated omission).
 *
 * One thread and epoll. Against the do-nothing server at 5,000/s it takes
 * about 55 µs of CPU a request, nearly all in the kernel (its send carries
 * each request through loopback TCP into the server's socket); vegeta,
 * which the bench used before, took 100-117 µs with its JSON encoder.
 *
 * usage: attack URL RATE SECONDS CONNS
 *   URL      http://HOST:PORT/PATH (the POST has no body)
 * writes a line per request to standard output within 1 ms of its answer:
 *   CODE START_NS LATENCY_NS ID
 * CODE is the HTTP status, or 0 when there was no answer (refused, reset,
 * closed, not HTTP, or none within TIMEOUT_S of its due time); START_NS the
 * wall time it was due, in ns since the Unix epoch; ID the "id" of a JSON
 * body, or "-". Exits 0 once every request has its line; 2 on bad usage. */
#define _GNU_SOURCE /* epoll_pwait2 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "ts.h"
#include "uid.h"

#define TIMEOUT_S 10
#define IN_MAX 8192 /* a response's head and body: ours are a few hundred bytes */
#define OUT_FLUSH 49152
#define OUT_DELAY_NS 1000000

enum state { CLOSED, CONNECTING, SENDING, WAITING, IDLE };

struct conn {
	int fd;
	enum state state;
	long k;         /* the request in flight */
	size_t sent;    /* bytes of the request written */
	size_t in_len;  /* bytes of the response read */
	/* Its head, once whole (head_len > 0): read once, as its lines are
	 * cut in place. */
	size_t head_len, body_len;
	int code;
	bool close_after;
	char in[IN_MAX];
};

static struct addrinfo *addr;
static char request[1024];
static size_t request_len;
static int64_t t0_mono, t0_wall, period_ns;
static long done_n, failed_n;
static char out[65536];
static size_t out_len;
static int64_t out_since; /* when the oldest line not yet written was made */
static const char *first_error;

static int64_t due_mono(long k)
{
	return t0_mono + k * period_ns;
}

static void flush_out(void)
{
	size_t off = 0;

	while (off < out_len) {
		ssize_t n = write(STDOUT_FILENO, out + off, out_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("attack: standard output");
			exit(1);
		}
		off += (size_t)n;
	}
	out_len = 0;
}

static void result(long k, int code, const char *id)
{
	int64_t lat = clock_mono_ns() - due_mono(k);
	int n;

	if (out_len > OUT_FLUSH)
		flush_out();
	if (out_len == 0)
		out_since = clock_mono_ns();
	n = snprintf(out + out_len, sizeof(out) - out_len, "%d %lld %lld %s\n", code,
	             (long long)(t0_wall + k * period_ns), (long long)lat, id ? id : "-");
	out_len += (size_t)n;
	done_n++;
	if (code != 200)
		failed_n++;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CLOSED;
	c->in_len = c->head_len = 0;
}

/* The request on c failed: its line, and a new connection for the next. */
static void conn_fail(struct conn *c, const char *why)
{
	if (first_error == NULL)
		first_error = why;
	if (c->state != IDLE && c->state != CLOSED)
		result(c->k, 0, NULL);
	conn_close(c);
}

/* Writes what is left of the request; false when c failed. */
static bool conn_send(struct conn *c)
{
	while (c->sent < request_len) {
		ssize_t n = send(c->fd, request + c->sent, request_len - c->sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->state = SENDING; /* EPOLLOUT (edge-triggered) resumes it */
			return true;
		}
		if (n <= 0) {
			conn_fail(c, "send failed");
			return false;
		}
		c->sent += (size_t)n;
	}
	c->state = WAITING;
	return true;
}

/* Starts request k on c (connecting first when it is closed). */
static void conn_start(struct conn *c, int ep, long k)
{
	c->k = k;
	c->sent = 0;
	c->in_len = c->head_len = 0;
	if (c->state == CLOSED) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
		int one = 1;

		c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			c->state = CONNECTING; /* so that conn_fail writes its line */
			conn_fail(c, "socket failed");
			return;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->state = CONNECTING;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
			conn_fail(c, "epoll_ctl failed");
			return;
		}
		if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) != 0) {
			if (errno != EINPROGRESS)
				conn_fail(c, "connect failed");
			return; /* EPOLLOUT says when it is done */
		}
	}
	conn_send(c);
}

/* A whole response in c->in: its line, and c free again (or closed).
 * Returns false while it is incomplete. */
static bool conn_response(struct conn *c)
{
	char *head_end, *p, id[UID_TEXT_SIZE] = "-";

	c->in[c->in_len] = '\0';
	if (c->head_len == 0) {
		long content_length = -1;

		if ((head_end = strstr(c->in, "\r\n\r\n")) == NULL) {
			if (c->in_len == IN_MAX - 1)
				conn_fail(c, "response head too long");
			return false;
		}
		if (sscanf(c->in, "HTTP/1.%*1[01] %3d ", &c->code) != 1 || c->code < 100 || c->code > 599) {
			conn_fail(c, "not an HTTP response");
			return false;
		}
		/* The header lines, each ended by a NUL in place of its CR. */
		c->close_after = false;
		for (p = strstr(c->in, "\r\n") + 2; p < head_end + 2; p += strlen(p) + 2) {
			*strstr(p, "\r\n") = '\0';
			if (strncasecmp(p, "Content-Length:", 15) == 0)
				content_length = strtol(p + 15, NULL, 10);
			else if (strncasecmp(p, "Connection:", 11) == 0 && strcasestr(p + 11, "close") != NULL)
				c->close_after = true;
		}
		c->head_len = (size_t)(head_end - c->in) + 4;
		if (content_length < 0 || content_length > (long)(IN_MAX - 1 - c->head_len)) {
			conn_fail(c, "a response without a Content-Length, or too long");
			return false;
		}
		c->body_len = (size_t)content_length;
	}
	if (c->in_len < c->head_len + c->body_len)
		return false;
	c->in[c->head_len + c->body_len] = '\0';
	if ((p = strstr(c->in + c->head_len, "\"id\":\"")) != NULL && uid_valid(p + 6, UID_TEXT_SIZE - 1)) {
		memcpy(id, p + 6, UID_TEXT_SIZE - 1);
		id[UID_TEXT_SIZE - 1] = '\0';
	}
	result(c->k, c->code, id);
	if (c->close_after || c->in_len != c->head_len + c->body_len) {
		conn_close(c); /* closing, or more than was asked for: start afresh */
	} else {
		c->in_len = c->head_len = 0;
		c->state = IDLE;
	}
	return true;
}

static void conn_event(struct conn *c, uint32_t events)
{
	if (c->state == CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			conn_fail(c, err == ECONNREFUSED ? "connection refused" : "connect failed");
			return;
		}
		if (!conn_send(c))
			return;
	} else if (c->state == SENDING && (events & EPOLLOUT)) {
		if (!conn_send(c))
			return;
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || c->state == CLOSED)
		return;
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, IN_MAX - 1 - c->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) { /* closed or reset: an idle one only needs reopening */
			conn_fail(c, n == 0 ? "connection closed by the server" : "connection reset");
			return;
		}
		if (c->state != WAITING && c->state != SENDING) {
			conn_fail(c, "bytes the server was not asked for");
			return;
		}
		c->in_len += (size_t)n;
		if (conn_response(c) || c->state == CLOSED)
			return;
	}
}

/* "http://HOST:PORT/PATH" into host, port and the request. 0 or -1. */
static int parse_url(const char *url, char *host, size_t host_size, char *port, size_t port_size)
{
	const char *h = url + 7, *slash, *colon;

	if (strncmp(url, "http://", 7) != 0 || (slash = strchr(h, '/')) == NULL ||
	    (colon = memchr(h, ':', (size_t)(slash - h))) == NULL || colon == h ||
	    (size_t)(colon - h) >= host_size || (size_t)(slash - colon - 1) >= port_size ||
	    slash == colon + 1)
		return -1;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	memcpy(port, colon + 1, (size_t)(slash - colon - 1));
	port[slash - colon - 1] = '\0';
	request_len = (size_t)snprintf(request, sizeof(request),
	                               "POST %s HTTP/1.1\r\nHost: %.*s\r\nContent-Length: 0\r\n\r\n",
	                               slash, (int)(slash - h), h);
	return request_len < sizeof(request) ? 0 : -1;
}

static long positive(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return errno == 0 && *end == '\0' && v > 0 && v <= 1000000 ? v : -1;
}

int main(int argc, char **argv)
{
	char host[256], port[16];
	long rate, secs, nconns, total, next = 0;
	struct conn *conns;
	struct ts_instant w;
	int ep, rc;

	if (argc != 5 || (rate = positive(argv[2])) < 0 || (secs = positive(argv[3])) < 0 ||
	    (nconns = positive(argv[4])) < 0 || nconns > 4096 ||
	    parse_url(argv[1], host, sizeof(host), port, sizeof(port)) != 0) {
		fprintf(stderr, "usage: attack http://HOST:PORT/PATH RATE SECONDS CONNS\n");
		return 2;
	}
	if ((rc = getaddrinfo(host, port, &(struct addrinfo){.ai_socktype = SOCK_STREAM}, &addr)) != 0) {
		fprintf(stderr, "attack: %s:%s: %s\n", host, port, gai_strerror(rc));
		return 1;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || (conns = calloc((size_t)nconns, sizeof(*conns))) == NULL) {
		perror("attack");
		return 1;
	}
	for (long i = 0; i < nconns; i++)
		conns[i].fd = -1;
	signal(SIGPIPE, SIG_IGN);
	total = rate * secs;
	period_ns = 1000000000 / rate;
	w = ts_now();
	t0_mono = clock_mono_ns();
	t0_wall = w.sec * 1000000000 + w.nsec;

	while (done_n < total) {
		struct epoll_event evs[64];
		int64_t now = clock_mono_ns(), wake = INT64_MAX;
		bool free_conn = true;
		int n;

		/* Every request due and a connection free for it: on its way. */
		while (next < total && due_mono(next) <= now) {
			struct conn *c = NULL;

			/* An open connection first; a new one only when none is free. */
			for (long i = 0; i < nconns && c == NULL; i++) {
				if (conns[i].state == IDLE)
					c = &conns[i];
			}
			for (long i = 0; i < nconns && c == NULL; i++) {
				if (conns[i].state == CLOSED)
					c = &conns[i];
			}
			if (c == NULL) {
				free_conn = false;
				break;
			}
			conn_start(c, ep, next++);
		}
		/* A request in flight past its time: no answer. */
		for (long i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			int64_t limit;

			if (c->state == IDLE || c->state == CLOSED)
				continue;
			limit = due_mono(c->k) + (int64_t)TIMEOUT_S * 1000000000;
			if (limit <= now)
				conn_fail(c, "no answer in time");
			else if (limit < wake)
				wake = limit;
		}
		if (next < total && free_conn && due_mono(next) < wake)
			wake = due_mono(next);
		/* The lines go out at most a millisecond late, a few at a time:
		 * a write for each woke the reader 5,000 times a second. */
		if (out_len > 0 && (done_n == total || now - out_since >= OUT_DELAY_NS))
			flush_out();
		if (done_n == total)
			break;
		if (out_len > 0 && out_since + OUT_DELAY_NS < wake)
			wake = out_since + OUT_DELAY_NS;
		{
			int64_t left = wake == INT64_MAX ? 1000000000 : wake - now;
			struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};

			if (left < 0)
				ts.tv_sec = ts.tv_nsec = 0;
			n = epoll_pwait2(ep, evs, 64, &ts, NULL);
		}
		if (n < 0 && errno != EINTR) {
			perror("attack: epoll_pwait2");
			return 1;
		}
		for (int i = 0; i < n; i++)
			conn_event(evs[i].data.ptr, evs[i].events);
	}
	flush_out();
	for (long i = 0; i < nconns; i++)
		conn_close(&conns[i]);
	free(conns);
	close(ep);
	freeaddrinfo(addr);
	if (failed_n > 0)
		fprintf(stderr, "attack: %ld of %ld requests without a 200 (first cause: %s)\n", failed_n,
		        total, first_error ? first_error : "an HTTP error status");
	return 0;
}
