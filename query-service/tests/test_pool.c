/* test_pool: the pool's and the default reader's deadlines
 * (query-service/pool.c, lookup.c) against a server that never answers: a
 * listening socket on 127.0.0.1 nobody accepts on, which is what a frozen
 * PostgreSQL looks like from outside (its kernel still completes the
 * connection). Every wait ends with an error, and the slot is free again. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "lookup.h"
#include "pg_startup.h"
#include "pool.h"
#include "suites.h"

#define POOL_SIZE 2

static int lfd = -1;

static void setup(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct db_params p = {.user = "u", .app_name = "test"};
	char err[256];

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 16), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	snprintf(p.url, sizeof(p.url),
	         "postgresql://127.0.0.1:%d/db?sslmode=disable&gssencmode=disable",
	         ntohs(sa.sin_port));
	pool_primary = pool_setup(POOL_PRIMARY, &p, POOL_SIZE, api_statements, err, sizeof(err));
	ck_assert_msg(pool_primary != NULL, "%s", err);
	pool_reads = pool_primary;
	lookup_setup(POOL_SIZE, 300, 0);
}

static void teardown(void)
{
	pool_shutdown(pool_primary);
	close(lfd);
}

START_TEST(acquire_gives_up_and_frees_the_slot)
{
	char err[256] = "";

	/* More attempts than slots: none stays taken by a failed one. */
	for (int i = 0; i < 2 * POOL_SIZE; i++) {
		struct timespec deadline = clock_deadline(200);
		ck_assert_ptr_null(pool_acquire(pool_primary, &deadline, err, sizeof(err)));
		ck_assert_msg(strstr(err, "no connection") != NULL, "%s", err);
		ck_assert_int_eq(pool_in_use(pool_primary), 0);
	}
	ck_assert(!pool_answered_within(pool_primary, 60000));
}
END_TEST

static void *acquire_main(void *arg)
{
	struct timespec deadline = clock_deadline(3000);
	char err[256];

	(void)arg;
	return pool_acquire(pool_primary, &deadline, err, sizeof(err));
}

/* The pool's sessions plan their statements once (pool.c,
 * POOL_SESSION_OPTIONS): the start-up packet of its connection asks for
 * it. The test plays the server up to that packet, then hangs up. */
START_TEST(sessions_ask_for_generic_plans)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	struct timeval tv = {.tv_sec = 5};
	char body[4096] = "";
	const char *options;
	uint32_t len = 0;
	pthread_t t;
	void *conn;
	int fd;

	ck_assert_int_eq(pthread_create(&t, NULL, acquire_main, NULL), 0);
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(recv(fd, &len, 4, MSG_WAITALL), 4);
	len = ntohl(len);
	ck_assert(len > 8 && len - 4 < sizeof(body));
	ck_assert_int_eq(recv(fd, body, len - 4, MSG_WAITALL), (ssize_t)(len - 4));
	close(fd);
	options = pg_startup_value(body, len - 4, "options");
	ck_assert_ptr_nonnull(options);
	ck_assert_msg(strstr(options, "-c plan_cache_mode=force_generic_plan") != NULL,
	              "options: %s", options);
	pthread_join(t, &conn);
	ck_assert_ptr_null(conn); /* the server hung up */
	ck_assert_int_eq(pool_in_use(pool_primary), 0);
}
END_TEST

START_TEST(lookup_answers_unavailable_when_the_database_does_not)
{
	struct lookup_record rec;
	char err[256] = "";

	ck_assert_int_eq(lookup_get("0b0e4a8c-6a0f-4c9e-9d3c-2c6a1d0e5f77", &rec, err, sizeof(err)),
	                 LOOKUP_UNAVAILABLE);
	ck_assert_msg(err[0] != '\0', "no reason given");
	ck_assert_int_eq(pool_in_use(pool_primary), 0);
	ck_assert_int_eq(lookup_queued(), 0);
}
END_TEST

START_TEST(ready_check_answers_not_ready_when_the_database_does_not)
{
	char err[256] = "";

	ck_assert_int_eq(lookup_ping(err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "no connection") != NULL, "%s", err);
	ck_assert_int_eq(pool_in_use(pool_primary), 0);
}
END_TEST

/* ---- DB_READ_URL: a read pool beside the primary's ---- */

static int closed_port; /* nobody listens there: connections are refused */

static void setup_two(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct db_params p = {.user = "u", .app_name = "test"};
	char err[256];
	int fd;

	setup(); /* the primary's pool, on the frozen server */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	closed_port = ntohs(sa.sin_port);
	close(fd);
	snprintf(p.url, sizeof(p.url), "postgresql://127.0.0.1:%d/db?sslmode=disable&gssencmode=disable",
	         closed_port);
	pool_reads = pool_setup(POOL_READ, &p, POOL_SIZE, api_statements, err, sizeof(err));
	ck_assert_msg(pool_reads != NULL, "%s", err);
}

static void teardown_two(void)
{
	pool_shutdown(pool_reads);
	pool_reads = pool_primary;
	teardown();
}

/* /ready names each side that is down: the read pool refused, the
 * primary frozen. */
START_TEST(ready_check_names_each_url_down)
{
	char err[512] = "";

	ck_assert_int_eq(lookup_ping(err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "DB_READ_URL: ") == err && strstr(err, "refused") != NULL, "%s",
	              err);
	ck_assert_msg(strstr(err, "; DB_URL: no connection") != NULL, "%s", err);
	ck_assert_int_eq(pool_in_use(pool_reads), 0);
	ck_assert_int_eq(pool_in_use(pool_primary), 0);
}
END_TEST

/* A read that the read pool cannot answer is unavailable (a 503), never
 * missing, and says where it failed. */
START_TEST(lookup_with_the_read_url_down_is_unavailable)
{
	struct lookup_record rec;
	char err[256] = "";

	ck_assert_int_eq(lookup_get("0b0e4a8c-6a0f-4c9e-9d3c-2c6a1d0e5f77", &rec, err, sizeof(err)),
	                 LOOKUP_UNAVAILABLE);
	ck_assert_msg(strstr(err, "DB_READ_URL: ") == err, "%s", err);
	ck_assert_int_eq(lookup_queued(), 0);
}
END_TEST

Suite *make_pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("frozen_server");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, acquire_gives_up_and_frees_the_slot);
	tcase_add_test(tc, sessions_ask_for_generic_plans);
	tcase_add_test(tc, lookup_answers_unavailable_when_the_database_does_not);
	tcase_add_test(tc, ready_check_answers_not_ready_when_the_database_does_not);
	suite_add_tcase(s, tc);

	tc = tcase_create("read_url");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup_two, teardown_two);
	tcase_add_test(tc, ready_check_names_each_url_down);
	tcase_add_test(tc, lookup_with_the_read_url_down_is_unavailable);
	suite_add_tcase(s, tc);
	return s;
}
