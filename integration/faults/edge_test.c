/* edge_test: abusive HTTP clients — a request line over 8 KiB (and over
 * 64 KiB), 200 headers, a body over 64 KiB (sized and chunked), one client
 * holding 1,000 connections (each with a request on it, or idle), slow
 * clients that send a byte a second, and 200 that send a body that way. Each gets a proper status or a closed
 * connection, never a 2xx or 5xx; and meanwhile /health keeps answering
 * 200, within HEALTH_MAX_MS, to another client that opens a new connection
 * for every probe (as a load balancer's health check does). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"

#define HEALTH_INTERVAL_MS 100
#define HEALTH_MAX_MS 2000
#define CONNECTIONS 1000
#define IDLE_HOLD_MS 8000
#define SLOW_CLIENTS 16
#define SLOW_LIMIT_MS 20000 /* the services cut a request head off after 10 s */
#define SLOW_BODY_CLIENTS 200
#define SLOW_BODY_BYTES 61440
#define SLOW_BODY_TICK_MS 2000
#define SLOW_BODY_MS 40000
#define SLOW_BODY_GRACE_MS 15000 /* the first slow clients are cut after 10 s */
#define POST_INTERVAL_MS 250
#define POST_MAX_MS 3000

/* What became of one connection. */
enum outcome { PENDING, ANSWERED, CLOSED };

struct conn {
	int fd;
	enum outcome outcome;
	int status;   /* when ANSWERED */
	size_t sent;  /* bytes of the request sent */
	char head[16]; /* the first bytes of the answer */
	size_t got;
};

static struct fault_probe health, posts;
static struct conn *conns;
static size_t n_conns;

static void close_all(void)
{
	for (size_t i = 0; i < n_conns; i++) {
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	}
	free(conns);
	conns = NULL;
	n_conns = 0;
}

static void setup(void)
{
	memset(&health, 0, sizeof(health));
	memset(&posts, 0, sizeof(posts));
}

static void teardown(void)
{
	fault_probe_stop(&health);
	fault_probe_stop(&posts);
	close_all();
	fault_teardown(NULL, 0);
}

/* The query service is ready once the table exists: the consumer creates
 * it (in a run of this suite alone, nothing else has started one). */
static void start_query(void)
{
	fault_start(STACK_CONSUMER, NULL);
	fault_start(STACK_QUERY, NULL);
}

static void start_health(enum stack_service which)
{
	char url[128];

	stack_url(url, sizeof(url), which, "/health");
	fault_probe_start(&health, url, HEALTH_INTERVAL_MS, 3 * HEALTH_MAX_MS);
}

/* Stops the probe and asserts that every probe was a 200 within
 * HEALTH_MAX_MS, and that they kept coming. */
static void check_health(const char *what, long since)
{
	size_t slow = 0, bad = 0, n;
	long worst = 0;
	int bad_status = 0;

	fault_probe_stop(&health);
	n = health.log.n;
	for (size_t i = 0; i < n; i++) {
		const struct fault_answer *a = &health.log.a[i];
		const long took = a->answered_ms - a->sent_ms;
		if (took > worst)
			worst = took;
		if (a->status != 200 && bad++ == 0)
			bad_status = a->status;
		else if (took > HEALTH_MAX_MS)
			slow++;
	}
	printf("  %s: /health probed %zu times by another client, worst %ld ms, %zu not 200\n", what,
	       n, worst, bad);
	ck_assert_msg(bad == 0, "%s: %zu of %zu /health probes not 200 (first: %d)", what, bad, n,
	              bad_status);
	ck_assert_msg(slow == 0, "%s: %zu of %zu /health probes took over %d ms (worst %ld ms)",
	              what, slow, n, HEALTH_MAX_MS, worst);
	ck_assert_msg(n + 2 >= (size_t)((clock_mono_ms() - since) / (HEALTH_INTERVAL_MS + 50)),
	              "%s: only %zu /health probes in %ld ms", what, n, clock_mono_ms() - since);
	fault_log_free(&health.log);
}

/* ---- raw connections ---- */

static int raw_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		close(fd);
		ck_abort_msg("connect to port %d: %s", port, strerror(errno));
	}
	return fd;
}

static void open_conns(size_t n, int port)
{
	conns = calloc(n, sizeof(*conns));
	ck_assert_ptr_nonnull(conns);
	for (n_conns = 0; n_conns < n; n_conns++) {
		conns[n_conns].fd = -1;
		conns[n_conns].fd = raw_connect(port);
	}
}

/* Sends up to len more bytes of req on c (as far as the socket takes them
 * now); a refused write means the server closed the connection. */
static void send_more(struct conn *c, const char *req, size_t len)
{
	while (c->outcome == PENDING && c->sent < len) {
		ssize_t w = send(c->fd, req + c->sent, len - c->sent, MSG_NOSIGNAL);
		if (w > 0) {
			c->sent += (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN ||
		                     errno == EINPROGRESS)) {
			return; /* not connected yet, or the buffer is full */
		} else {
			/* EPIPE or ECONNRESET: what was sent may still have an
			 * answer to read. */
			return;
		}
	}
}

/* Reads what has arrived on c: the status line, or the end. */
static void receive(struct conn *c)
{
	char buf[4096];

	while (c->outcome == PENDING) {
		ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
		if (r > 0) {
			size_t k = (size_t)r < sizeof(c->head) - 1 - c->got ? (size_t)r
			                                                    : sizeof(c->head) - 1 - c->got;
			memcpy(c->head + c->got, buf, k);
			c->got += k;
			c->head[c->got] = '\0';
			if (c->got >= 12) {
				if (strncmp(c->head, "HTTP/1.", 7) != 0 ||
				    sscanf(c->head + 9, "%3d", &c->status) != 1)
					c->status = -1;
				c->outcome = ANSWERED;
			}
		} else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			c->outcome = c->got > 0 ? ANSWERED : CLOSED;
			if (c->got > 0)
				c->status = -1; /* a cut status line */
		} else {
			return;
		}
	}
}

/* Drives every pending connection: sends the rest of req (when
 * per_tick == 0) or per_tick more bytes each tick_ms, and reads answers,
 * until none is pending or deadline. */
static void drive(const char *req, size_t len, size_t per_tick, int tick_ms, long deadline)
{
	struct pollfd *pfd = calloc(n_conns, sizeof(*pfd));
	long next_tick = clock_mono_ms();

	ck_assert_ptr_nonnull(pfd);
	for (;;) {
		size_t pending = 0;
		const bool tick = per_tick > 0 && clock_mono_ms() >= next_tick;

		if (tick)
			next_tick += tick_ms;
		for (size_t i = 0; i < n_conns; i++) {
			struct conn *c = &conns[i];
			pfd[i].fd = c->outcome == PENDING ? c->fd : -1;
			pfd[i].events = POLLIN;
			if (c->outcome != PENDING)
				continue;
			pending++;
			if (per_tick == 0)
				send_more(c, req, len);
			else if (tick && c->sent < len)
				send_more(c, req, c->sent + per_tick < len ? c->sent + per_tick : len);
			if (c->sent < len && per_tick == 0)
				pfd[i].events |= POLLOUT;
		}
		if (pending == 0 || clock_mono_ms() >= deadline)
			break;
		if (poll(pfd, n_conns, 20) > 0) {
			for (size_t i = 0; i < n_conns; i++) {
				if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
					receive(&conns[i]);
			}
		}
	}
	free(pfd);
}

/* Counts the outcomes: answered with a status in [lo, hi], answered
 * otherwise, closed, still pending. */
static void tally(int lo, int hi, size_t *ok, size_t *bad, size_t *closed, size_t *pending,
                  int *bad_status)
{
	*ok = *bad = *closed = *pending = 0;
	*bad_status = 0;
	for (size_t i = 0; i < n_conns; i++) {
		const struct conn *c = &conns[i];
		if (c->outcome == PENDING)
			(*pending)++;
		else if (c->outcome == CLOSED)
			(*closed)++;
		else if (c->status >= lo && c->status <= hi)
			(*ok)++;
		else if ((*bad)++ == 0)
			*bad_status = c->status;
	}
}

/* One request on a new connection: returns the status, or 0 if the server
 * closed the connection without one. Asserts an outcome within 15 s. */
static int one_request(enum stack_service which, const char *req, size_t len)
{
	int status;

	open_conns(1, stack.port[which]);
	drive(req, len, 0, 0, clock_mono_ms() + 15000);
	ck_assert_msg(conns[0].outcome != PENDING, "no answer and no close within 15 s");
	status = conns[0].outcome == ANSWERED ? conns[0].status : 0;
	close_all();
	return status;
}

/* ---- the tests ---- */

/* Request heads and bodies over the limits. */
START_TEST(edge_oversized)
{
	static const enum stack_service services[] = {STACK_COMMAND, STACK_QUERY};
	const size_t big = 70 * 1024;
	char *req = malloc(2 * big);
	long since;
	size_t len;

	ck_assert_ptr_nonnull(req);
	fault_start(STACK_COMMAND, NULL);
	start_query();
	since = clock_mono_ms(); /* the probes are counted from their start */
	start_health(STACK_COMMAND);

	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
		const char *name = stack_name(services[s]);
		int st;

		/* A request line over 8 KiB: 414. */
		len = (size_t)sprintf(req, "GET /api/v1/timestamp/");
		memset(req + len, 'a', 9000);
		len += 9000;
		len += (size_t)sprintf(req + len, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
		st = one_request(services[s], req, len);
		printf("  %s: 9 KB request line -> %d\n", name, st);
		ck_assert_msg(st == 414 || st == 0, "%s: a 9 KB request line answered %d", name, st);

		/* Over civetweb's 64 KiB for a whole head: 4xx or closed. */
		len = (size_t)sprintf(req, "GET /api/v1/timestamp/");
		memset(req + len, 'a', big);
		len += big;
		len += (size_t)sprintf(req + len, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
		st = one_request(services[s], req, len);
		printf("  %s: 70 KB request line -> %d\n", name, st);
		ck_assert_msg((st >= 400 && st < 500) || st == 0, "%s: a 70 KB request line answered %d",
		              name, st);

		/* 200 headers: 431. */
		len = (size_t)sprintf(req, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
		for (int h = 0; h < 200; h++)
			len += (size_t)sprintf(req + len, "X-Fault-%03d: %d\r\n", h, h);
		len += (size_t)sprintf(req + len, "\r\n");
		st = one_request(services[s], req, len);
		printf("  %s: 200 headers -> %d\n", name, st);
		ck_assert_msg(st == 431 || st == 0, "%s: 200 headers answered %d", name, st);
	}

	/* A body over 64 KiB, sized and chunked: 413, nothing published. */
	len = (size_t)sprintf(req, "POST /app HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                           "Content-Length: %zu\r\n\r\n", big);
	memset(req + len, 'b', big);
	len += big;
	ck_assert_int_eq(one_request(STACK_COMMAND, req, len), 413);
	len = (size_t)sprintf(req, "POST /app HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                           "Transfer-Encoding: chunked\r\n\r\n");
	for (int c = 0; c < 70; c++) {
		len += (size_t)sprintf(req + len, "400\r\n");
		memset(req + len, 'c', 1024);
		len += 1024;
		len += (size_t)sprintf(req + len, "\r\n");
	}
	len += (size_t)sprintf(req + len, "0\r\n\r\n");
	ck_assert_int_eq(one_request(STACK_COMMAND, req, len), 413);
	printf("  command-service: 70 KB body, sized or chunked -> 413\n");
	free(req);
	check_health("oversized requests", since);
}
END_TEST

/* One client opens 1,000 connections at once and sends a request on each,
 * keeping them open afterwards; then 1,000 that send nothing at all. */
static void many_connections(enum stack_service which)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	const char *name = stack_name(which);
	size_t ok, bad, closed, pending;
	int bad_status;
	long since = clock_mono_ms(), t;

	start_health(which);
	t = clock_mono_ms();
	open_conns(CONNECTIONS, stack.port[which]);
	drive(req, sizeof(req) - 1, 0, 0, clock_mono_ms() + 20000);
	tally(200, 200, &ok, &bad, &closed, &pending, &bad_status);
	printf("  %s: %d connections with a request each: %zu answered 200, %zu closed, %zu other, "
	       "%zu pending after %.1f s\n",
	       name, CONNECTIONS, ok, closed, bad, pending, fault_secs(clock_mono_ms() - t));
	ck_assert_msg(bad == 0, "%s: %zu answers other than 200 (first: %d)", name, bad, bad_status);
	ck_assert_msg(pending == 0, "%s: %zu connections neither answered nor closed", name, pending);
	proc_sleep_ms(2000); /* the kept-alive connections stay open meanwhile */
	close_all();
	check_health("1,000 connections with requests", since);

	since = clock_mono_ms();
	start_health(which);
	open_conns(CONNECTIONS, stack.port[which]);
	drive("", 0, 0, 0, clock_mono_ms() + IDLE_HOLD_MS);
	tally(400, 499, &ok, &bad, &closed, &pending, &bad_status);
	printf("  %s: %d idle connections held %.1f s: %zu closed by the server, %zu answered 4xx, "
	       "%zu other, %zu still open\n",
	       name, CONNECTIONS, fault_secs(IDLE_HOLD_MS), closed, ok, bad, pending);
	ck_assert_msg(bad == 0, "%s: an idle connection answered %d", name, bad_status);
	close_all();
	check_health("1,000 idle connections", since);
}

START_TEST(edge_many_connections)
{
	fault_start(STACK_COMMAND, NULL);
	start_query();
	many_connections(STACK_COMMAND);
	many_connections(STACK_QUERY);
}
END_TEST

/* Clients that send their request a byte a second: cut off with a 4xx or
 * a closed connection once the request timeout passes, never served. */
START_TEST(edge_slow_clients)
{
	static const char req[] = "POST /app HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
	size_t ok, bad, closed, pending, most = 0;
	int bad_status;
	const long since = clock_mono_ms();

	fault_start(STACK_COMMAND, NULL);
	start_health(STACK_COMMAND);
	open_conns(SLOW_CLIENTS, stack.port[STACK_COMMAND]);
	drive(req, sizeof(req) - 1, 1, 1000, clock_mono_ms() + SLOW_LIMIT_MS);
	tally(400, 499, &ok, &bad, &closed, &pending, &bad_status);
	for (size_t i = 0; i < n_conns; i++)
		most = conns[i].sent > most ? conns[i].sent : most;
	printf("  %d clients sending a byte a second: %zu answered 4xx (first %d), %zu closed, "
	       "%zu other, %zu pending after %.1f s; at most %zu of %zu bytes sent\n",
	       SLOW_CLIENTS, ok, n_conns ? conns[0].status : 0, closed, bad, pending,
	       fault_secs(clock_mono_ms() - since), most, sizeof(req) - 1);
	ck_assert_msg(bad == 0, "a slow client was answered %d", bad_status);
	ck_assert_msg(pending == 0, "%zu slow clients still connected after %d ms", pending,
	              SLOW_LIMIT_MS);
	close_all();
	check_health("slow clients", since);
}
END_TEST

/* Clients that announce a 60 KB body and send it a byte every 2 s, 200 of
 * them (more than the command service's 128 threads), for 40 s. Each is cut
 * off at its request deadline (408, or a closed connection), and from 15 s
 * on, when the first of them have been cut, fresh POSTs on new connections
 * get their 200 within 3 s again. */
START_TEST(edge_slow_bodies)
{
	char *req = malloc(256 + SLOW_BODY_BYTES), url[128];
	size_t ok, bad, closed, pending, head_len, after = 0, late = 0, not_200 = 0;
	int bad_status, first_not_200 = 0;
	long worst = 0, since, grace;

	ck_assert_ptr_nonnull(req);
	head_len = (size_t)sprintf(req, "POST /app HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                                "Content-Length: %d\r\n\r\n", SLOW_BODY_BYTES);
	memset(req + head_len, 'b', SLOW_BODY_BYTES);
	fault_start(STACK_COMMAND, NULL);
	stack_url(url, sizeof(url), STACK_COMMAND, "/api/v1/timestamp");
	posts.post = true;
	since = clock_mono_ms();
	grace = since + SLOW_BODY_GRACE_MS;
	fault_probe_start(&posts, url, POST_INTERVAL_MS, POST_MAX_MS);
	open_conns(SLOW_BODY_CLIENTS, stack.port[STACK_COMMAND]);
	drive(req, head_len, 0, 0, clock_mono_ms() + 1000); /* every head, whole */
	drive(req, head_len + SLOW_BODY_BYTES, 1, SLOW_BODY_TICK_MS, since + SLOW_BODY_MS);
	if (clock_mono_ms() < since + SLOW_BODY_MS)
		proc_sleep_ms(since + SLOW_BODY_MS - clock_mono_ms()); /* the POSTs go on */
	fault_probe_stop(&posts);

	tally(400, 499, &ok, &bad, &closed, &pending, &bad_status);
	for (size_t i = 0; i < posts.log.n; i++) {
		const struct fault_answer *a = &posts.log.a[i];
		const long took = a->answered_ms - a->sent_ms;
		if (a->sent_ms < grace)
			continue;
		after++;
		worst = took > worst ? took : worst;
		if (a->status != 200 && not_200++ == 0)
			first_not_200 = a->status;
		else if (took > POST_MAX_MS)
			late++;
	}
	printf("  %d clients sending a %d-byte body a byte every %.0f s: %zu answered 4xx (first %d), "
	       "%zu closed, %zu other, %zu pending after %.1f s\n",
	       SLOW_BODY_CLIENTS, SLOW_BODY_BYTES, fault_secs(SLOW_BODY_TICK_MS), ok,
	       n_conns ? conns[0].status : 0, closed, bad, pending, fault_secs(clock_mono_ms() - since));
	printf("  fresh POSTs meanwhile: %zu, %zu of them sent after %.0f s: %zu not 200 (first %d), "
	       "%zu over %d ms, worst %ld ms\n",
	       posts.log.n, after, fault_secs(SLOW_BODY_GRACE_MS), not_200, first_not_200, late,
	       POST_MAX_MS, worst);
	ck_assert_msg(bad == 0, "a slow body was answered %d", bad_status);
	ck_assert_msg(pending == 0, "%zu slow bodies still being read after %d ms", pending,
	              SLOW_BODY_MS);
	ck_assert_msg(not_200 == 0, "%zu of %zu POSTs sent after %d ms were not 200 (first: %d)",
	              not_200, after, SLOW_BODY_GRACE_MS, first_not_200);
	ck_assert_msg(late == 0, "%zu of %zu POSTs sent after %d ms took over %d ms (worst %ld ms)",
	              late, after, SLOW_BODY_GRACE_MS, POST_MAX_MS, worst);
	ck_assert_msg(after + 2 >= (size_t)((SLOW_BODY_MS - SLOW_BODY_GRACE_MS) / (POST_INTERVAL_MS + 50)),
	              "only %zu POSTs in the %d ms after the grace period", after,
	              SLOW_BODY_MS - SLOW_BODY_GRACE_MS);
	close_all();
	fault_log_free(&posts.log);
	free(req);
}
END_TEST

Suite *make_edge_suite(void)
{
	Suite *s = suite_create("edge");
	TCase *tc = tcase_create("abuse");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, edge_oversized);
	tcase_add_test(tc, edge_many_connections);
	tcase_add_test(tc, edge_slow_clients);
	suite_add_tcase(s, tc);

	tc = tcase_create("slow_bodies");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, edge_slow_bodies);
	suite_add_tcase(s, tc);
	return s;
}
