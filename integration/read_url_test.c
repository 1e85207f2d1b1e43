/* read_url_test: query-service with DB_READ_URL, against a "replica" that
 * the test controls: a second database on the same server (the schema
 * applied, rows present or absent as each test needs), standing in for a
 * standby that lags. A second query-service runs on the query port + 5
 * with DB_URL the stack's database and DB_READ_URL the replica:
 *
 *   - reads go to DB_READ_URL: a row only there is answered;
 *   - a row missing there but present on DB_URL is a 200 (confirmed);
 *   - a row missing in both is a 404;
 *   - DB_READ_URL down: reads are 503 and /ready says which URL;
 *   - DB_URL down: a row the replica misses is a 503, never a 404.
 *
 * Rows are written straight with SQL, with fresh ids, so that the
 * consumer's rows and other suites do not matter. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"
#include "stack.h"
#include "store.h"
#include "suites.h"
#include "uid.h"

#define REPLICA_DB "read_url_replica"
#define START_TIMEOUT_MS 30000

extern const char schema_sql[]; /* consumer-service/schema.sql, built in */

static struct svc reader;
static int reader_port;
static char replica_url[512];

/* The stack's DB_URL with its database replaced by db. */
static void url_of(const char *db, char *buf, size_t size)
{
	const char *slash = strrchr(stack.db_url, '/');

	ck_assert_ptr_nonnull(slash);
	snprintf(buf, size, "%.*s/%s", (int)(slash - stack.db_url), stack.db_url, db);
}

/* A port nobody listens on: one the kernel just gave and took back. */
static int closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* The replica: a fresh database with the schema. */
static void replica_create(void)
{
	char err[512];

	url_of(REPLICA_DB, replica_url, sizeof(replica_url));
	char *text = NULL;
	long rows = 0;

	/* DROP DATABASE IF EXISTS would print a NOTICE when there is none. */
	ck_assert_msg(store_query(stack.db_url, "SELECT 1 FROM pg_database WHERE datname = $1",
	                          (const char *const[]){REPLICA_DB}, 1, &text, &rows, err,
	                          sizeof(err)) == 0, "%s", err);
	free(text);
	if (rows > 0)
		ck_assert_msg(store_exec(stack.db_url, "DROP DATABASE " REPLICA_DB " WITH (FORCE)", err,
		                         sizeof(err)) == 0, "%s", err);
	ck_assert_msg(store_exec(stack.db_url, "CREATE DATABASE " REPLICA_DB, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_msg(store_exec(replica_url, schema_sql, err, sizeof(err)) == 0, "%s", err);
}

/* Starts the second query-service with db_url and read_url; waits for its
 * /ready when ready, else for /health (a side is down on purpose). */
static void reader_start(const char *db_url, const char *read_url, bool ready)
{
	char env_db[600], env_read[600], url[128], err[1024];
	const char *env[] = {env_db, env_read, NULL};

	snprintf(env_db, sizeof(env_db), "DB_URL=%s", db_url);
	snprintf(env_read, sizeof(env_read), "DB_READ_URL=%s", read_url);
	reader_port = stack.port[STACK_QUERY] + 5;
	ck_assert_msg(stack_spawn(&reader, STACK_QUERY, reader_port, "query-service read_url",
	                          "query-service-read-url.log", env, err, sizeof(err)) == 0,
	              "%s", err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", reader_port, ready ? "ready" : "health");
	ck_assert_msg(wait_ready(url, START_TIMEOUT_MS, &reader, err, sizeof(err)) == 0, "%s", err);
}

static void reader_stop(void)
{
	svc_stop(&reader, SIGTERM, 10000, NULL);
}

/* Inserts a record with a fresh id into the database at db_url. */
static void insert_row(const char *db_url, char *id)
{
	char sql[256], err[512];

	uid_v4(id);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO timestamp_records (id, event_timestamp, created_at) "
	         "VALUES ('%s', '2024-05-06T07:08:09.123456Z', '2024-05-06T07:08:10Z')",
	         id);
	ck_assert_msg(store_exec(db_url, sql, err, sizeof(err)) == 0, "%s", err);
}

/* GET /api/v1/timestamp/id on the second query-service. */
static long get_status(const char *id, struct http_resp *resp)
{
	char url[160];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/timestamp/%s", reader_port, id);
	ck_assert_int_eq(http_get(url, NULL, resp), 0);
	return resp->status;
}

static double missing_metric(const char *result)
{
	char url[128], series[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", reader_port);
	snprintf(series, sizeof(series), "query_read_missing_total{result=\"%s\"}", result);
	return metric_value(url, series);
}

static void setup_both_up(void)
{
	replica_create();
	reader_start(stack.db_url, replica_url, true);
}

START_TEST(reads_go_to_the_read_url)
{
	struct http_resp resp = {0};
	char id[UID_TEXT_SIZE];

	insert_row(replica_url, id); /* only on the replica */
	ck_assert_int_eq(get_status(id, &resp), 200);
	ck_assert_msg(strstr(resp.body, id) != NULL, "%s", resp.body);
	ck_assert_msg(strstr(resp.body, "2024-05-06T07:08:09.123456Z") != NULL, "%s", resp.body);
	http_resp_clear(&resp);
	ck_assert(missing_metric("found_on_primary") == 0);
	reader_stop();
}
END_TEST

START_TEST(missing_on_the_read_url_is_confirmed_on_the_primary)
{
	struct http_resp resp = {0};
	char id[UID_TEXT_SIZE], none[UID_TEXT_SIZE];

	insert_row(stack.db_url, id); /* on the primary, not (yet) on the replica */
	ck_assert_int_eq(get_status(id, &resp), 200);
	ck_assert_msg(strstr(resp.body, id) != NULL, "%s", resp.body);
	http_resp_clear(&resp);
	ck_assert(missing_metric("found_on_primary") == 1);
	ck_assert(missing_metric("confirmed") == 0);

	uid_v4(none); /* on neither */
	ck_assert_int_eq(get_status(none, &resp), 404);
	http_resp_clear(&resp);
	ck_assert(missing_metric("confirmed") == 1);
	reader_stop();
}
END_TEST

START_TEST(read_url_down_is_503_and_not_ready)
{
	struct http_resp resp = {0};
	char down[256], id[UID_TEXT_SIZE], url[128];

	snprintf(down, sizeof(down), "postgresql://postgres@127.0.0.1:%d/postgres", closed_port());
	reader_start(stack.db_url, down, false);
	insert_row(stack.db_url, id); /* there on the primary: still no answer */
	ck_assert_int_eq(get_status(id, &resp), 503);
	ck_assert_str_eq(resp.retry_after, "1");
	http_resp_clear(&resp);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ready", reader_port);
	ck_assert_int_eq(http_get(url, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 503);
	ck_assert_msg(resp.body && strstr(resp.body, "DB_READ_URL: ") != NULL, "%s", resp.body);
	ck_assert_msg(strstr(resp.body, "DB_URL: ") == NULL, "the primary is up, yet: %s", resp.body);
	http_resp_clear(&resp);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", reader_port);
	ck_assert(metric_value(url, "db_pool_up{pool=\"read\"}") == 0);
	ck_assert(metric_value(url, "db_pool_up{pool=\"primary\"}") == 1);
	reader_stop();
}
END_TEST

START_TEST(primary_down_makes_a_miss_503_never_404)
{
	struct http_resp resp = {0};
	char down[256], id[UID_TEXT_SIZE], none[UID_TEXT_SIZE];

	replica_create();
	snprintf(down, sizeof(down), "postgresql://postgres@127.0.0.1:%d/postgres", closed_port());
	reader_start(down, replica_url, false);
	insert_row(replica_url, id);
	ck_assert_int_eq(get_status(id, &resp), 200); /* the replica has it */
	http_resp_clear(&resp);
	uid_v4(none);
	ck_assert_int_eq(get_status(none, &resp), 503);
	ck_assert_msg(strstr(resp.body, "not confirmed on DB_URL") != NULL, "%s", resp.body);
	http_resp_clear(&resp);
	ck_assert(missing_metric("unconfirmed") == 1);
	reader_stop();
}
END_TEST

Suite *make_read_url_suite(void)
{
	Suite *s = suite_create("read_url");
	TCase *tc = tcase_create("replica");

	tcase_set_timeout(tc, 90);
	tcase_add_checked_fixture(tc, setup_both_up, NULL);
	tcase_add_test(tc, reads_go_to_the_read_url);
	tcase_add_test(tc, missing_on_the_read_url_is_confirmed_on_the_primary);
	suite_add_tcase(s, tc);

	tc = tcase_create("down");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, read_url_down_is_503_and_not_ready);
	tcase_add_test(tc, primary_down_makes_a_miss_503_never_404);
	suite_add_tcase(s, tc);
	return s;
}
