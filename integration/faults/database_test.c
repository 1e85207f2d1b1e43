/* database_test: PostgreSQL stops for 20 s while 5,000 messages stream into
 * the topic, then starts again. The consumer stays the same process and the
 * same group member (consumer_rebalances_total does not move), retries with growing, capped
 * backoff (its log), says 503 on /ready meanwhile, dead-letters nothing, and
 * afterwards exactly the 5,000 rows exist. The query service answers 503
 * during the outage and 200 again by itself, without flapping. And the same
 * restart with a multi-host DB_URL whose first host is frozen. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"

#define MESSAGES 5000
#define CHUNK 250
#define CHUNK_INTERVAL_MS 1000 /* 5,000 messages over 20 s */
#define OUTAGE_MS 20000
#define RETRY_MAX_MS 2000
#define NOTICE_MS 3000 /* the consumer learns of the outage at its next write */
#define RECOVERY_MS 30000
#define ROWS_MS 60000
#define READERS 4
#define POOL_SIZE 8 /* the query service's DB_POOL_SIZE default */
#define TEXT_(x) #x
#define TEXT(x) TEXT_(x)

static const char *const consumer_env[] = {"DB_RETRY_MAX_MS=2000", NULL};

static struct fault_stream stream;
static struct fault_probe consumer_ready, query_ready, readers[READERS];

static void setup(void)
{
	memset(&stream, 0, sizeof(stream));
	memset(&consumer_ready, 0, sizeof(consumer_ready));
	memset(&query_ready, 0, sizeof(query_ready));
	memset(readers, 0, sizeof(readers));
}

static void stop_probes(void)
{
	fault_probe_stop(&consumer_ready);
	fault_probe_stop(&query_ready);
	for (int i = 0; i < READERS; i++)
		fault_probe_stop(&readers[i]);
}

static void teardown(void)
{
	fault_stream_join(&stream, true);
	stop_probes();
	fault_teardown(NULL, 0);
	free(stream.ids);
	stream.ids = NULL;
}

/* Counts probes in [from, to): all of them, and those answered 503 with
 * Retry-After. */
static void window(const struct fault_log *l, long from, long to, size_t *n, size_t *n_503)
{
	*n = *n_503 = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (l->a[i].sent_ms >= from && l->a[i].answered_ms < to) {
			(*n)++;
			if (l->a[i].status == 503 && l->a[i].retry_after)
				(*n_503)++;
		}
	}
}

/* The first probe sent after t that answered 200: its answer time, or -1.
 * *bad_after counts the probes sent after that one that did not answer
 * 200. */
static long recovered_at(const struct fault_log *l, long t, size_t *bad_after)
{
	long first = -1;

	*bad_after = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct fault_answer *a = &l->a[i];
		if (a->sent_ms < t)
			continue;
		if (first < 0 && a->status == 200)
			first = a->answered_ms;
		else if (first >= 0 && a->sent_ms > first && a->status != 200)
			(*bad_after)++;
	}
	return first;
}

struct backoff {
	int n, first, max, at_max, decreases;
	int last;
};

/* Reads "...; retrying in N ms" of a failed batch write. */
static void on_retry(const char *line, void *arg)
{
	struct backoff *b = arg;
	const char *p = strstr(line, "retrying in ");
	int ms;

	if (p == NULL || sscanf(p, "retrying in %d ms", &ms) != 1)
		return;
	if (b->n++ == 0)
		b->first = ms;
	if (ms < b->last)
		b->decreases++;
	if (ms > b->max)
		b->max = ms;
	if (ms == RETRY_MAX_MS)
		b->at_max++;
	b->last = ms;
}

START_TEST(database_down)
{
	char url[256], known[UID_TEXT_SIZE], errstr[512];
	const char *log = stack.svc[STACK_CONSUMER].log_path;
	long log_from, down, starting, up, consumer_back, query_back, rows, rows_at;
	int64_t dlq_before = 0, dlq_after = 0;
	size_t n, n_503, q_n, q_503, r_n = 0, r_503 = 0, flaps = 0, bad;
	struct backoff b = {0};
	double rebalances_before, rebalances_after;

	fault_start(STACK_CONSUMER, consumer_env);
	fault_start(STACK_QUERY, NULL);
	ck_assert_msg(stack_sentinel(0, 15000, known, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_msg(topic_watermark_sum(stack.broker, stack.dlq_topic, &dlq_before, errstr,
	                                  sizeof(errstr)) == 0,
	              "%s", errstr);
	log_from = fault_file_size(log);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/metrics");
	rebalances_before = fault_metric(url, "consumer_rebalances_total");

	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	fault_probe_start(&consumer_ready, url, 250, 5000);
	stack_url(url, sizeof(url), STACK_QUERY, "/ready");
	fault_probe_start(&query_ready, url, 250, 5000);
	/* Several readers at once, so that several pooled connections see the
	 * database go away. */
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", known);
	for (int i = 0; i < READERS; i++)
		fault_probe_start(&readers[i], url, 100, 5000);
	fault_stream_start(&stream, MESSAGES, CHUNK, CHUNK_INTERVAL_MS);
	proc_sleep_ms(1500);

	ck_assert_msg(fault_script("pg.sh", "stop") == 0, "scripts/pg.sh stop failed");
	down = clock_mono_ms();
	proc_sleep_ms(OUTAGE_MS);
	starting = clock_mono_ms();
	ck_assert_msg(fault_script("pg.sh", "start") == 0, "scripts/pg.sh start failed");
	up = clock_mono_ms();

	/* Everything lands, then a little more probing for flapping. */
	fault_stream_join(&stream, false);
	rows = fault_wait_rows(stream.ids, MESSAGES, ROWS_MS);
	rows_at = clock_mono_ms();
	proc_sleep_ms(2000);
	stop_probes();

	ck_assert_msg(svc_alive(&stack.svc[STACK_CONSUMER]), "the consumer exited (log: %s)", log);
	ck_assert_msg(svc_alive(&stack.svc[STACK_QUERY]), "the query service exited (log: %s)",
	              stack.svc[STACK_QUERY].log_path);

	/* Readiness during the outage. */
	window(&consumer_ready.log, down + NOTICE_MS, starting, &n, &n_503);
	window(&query_ready.log, down, starting, &q_n, &q_503);
	for (int i = 0; i < READERS; i++) {
		size_t a, a_503;
		window(&readers[i].log, down, starting, &a, &a_503);
		r_n += a;
		r_503 += a_503;
	}
	consumer_back = recovered_at(&consumer_ready.log, up, &bad);
	flaps += bad;
	/* The query service is back when its /ready and every reader are. */
	query_back = recovered_at(&query_ready.log, up, &bad);
	flaps += bad;
	for (int i = 0; i < READERS; i++) {
		long t = recovered_at(&readers[i].log, up, &bad);
		flaps += bad;
		if (query_back >= 0)
			query_back = t < 0 ? -1 : t > query_back ? t : query_back;
	}

	/* The consumer's log and metrics. */
	fault_grep(log, log_from, "retrying in", on_retry, &b);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/metrics");
	rebalances_after = fault_metric(url, "consumer_rebalances_total");
	ck_assert_msg(topic_watermark_sum(stack.broker, stack.dlq_topic, &dlq_after, errstr,
	                                  sizeof(errstr)) == 0,
	              "%s", errstr);

	printf("  database down %.1f s: consumer /ready 503 on %zu of %zu probes, query /ready 503 "
	       "on %zu of %zu, reads 503 on %zu of %zu; %d retries logged, backoff %d ms growing "
	       "to %d ms (%d at the cap); %.0f rebalances; %lld dead letters\n",
	       fault_secs(starting - down), n_503, n, q_503, q_n, r_503, r_n, b.n, b.first, b.max,
	       b.at_max, rebalances_after - rebalances_before, (long long)(dlq_after - dlq_before));
	printf("  back after the database started: consumer ready %.2f s, query reads %.2f s, all "
	       "%ld rows %.2f s\n",
	       fault_secs(consumer_back - up), fault_secs(query_back - up), rows,
	       fault_secs(rows_at - up));

	ck_assert_msg(rows == MESSAGES, "%ld rows for the %d messages, want exactly %d", rows,
	              MESSAGES, MESSAGES);
	ck_assert_msg(n >= 10 && n_503 == n, "consumer /ready: %zu of %zu probes during the outage "
	              "were not 503", n - n_503, n);
	ck_assert_msg(q_n >= 10 && q_503 == q_n, "query /ready: %zu of %zu probes during the outage "
	              "were not 503", q_n - q_503, q_n);
	ck_assert_msg(r_n >= 10 && r_503 == r_n, "query reads: %zu of %zu during the outage were not "
	              "503 with Retry-After", r_n - r_503, r_n);
	ck_assert_msg(consumer_back >= 0, "the consumer's /ready never answered 200 again");
	ck_assert_msg(query_back >= 0, "the query service never answered 200 again");
	ck_assert_msg(flaps == 0, "%zu probes failed after their service had recovered", flaps);
	ck_assert_msg(rebalances_before >= 1, "consumer_rebalances_total %.0f before the outage: "
	              "not even the first assignment counted", rebalances_before);
	ck_assert_msg(rebalances_after == rebalances_before, "consumer_rebalances_total went from "
	              "%.0f to %.0f during the outage: the consumer lost its group membership",
	              rebalances_before, rebalances_after);
	ck_assert_msg(b.n >= 5, "only %d retries in %s", b.n, log);
	ck_assert_msg(b.first <= 200 && b.decreases == 0 && b.max == RETRY_MAX_MS && b.at_max >= 2,
	              "backoff not growing to its cap of %d ms: first %d, max %d, %d at the cap, "
	              "%d decreases",
	              RETRY_MAX_MS, b.first, b.max, b.at_max, b.decreases);
	ck_assert_msg(fault_grep(log, log_from, "database writes succeed again", NULL, NULL) == 1,
	              "no 'database writes succeed again' in %s", log);
	ck_assert_msg(dlq_after == dlq_before, "%lld messages dead-lettered during the outage: a "
	              "database error was taken for poison", (long long)(dlq_after - dlq_before));
	fault_log_free(&consumer_ready.log);
	fault_log_free(&query_ready.log);
	for (int i = 0; i < READERS; i++)
		fault_log_free(&readers[i].log);
}
END_TEST

/* One read of url per thread, all at once. */
struct burst {
	const char *url;
	long status;
};

static void *burst_main(void *arg)
{
	struct burst *b = arg;
	struct http_resp resp;

	b->status = http_get(b->url, NULL, &resp) == 0 ? resp.status : 0;
	http_resp_clear(&resp);
	return NULL;
}

/* Reads url from POOL_SIZE threads at once; returns how many got 200. */
static int read_burst(const char *url)
{
	struct burst b[POOL_SIZE];
	pthread_t t[POOL_SIZE];
	int ok = 0;

	for (int i = 0; i < POOL_SIZE; i++) {
		b[i] = (struct burst){.url = url};
		ck_assert_int_eq(pthread_create(&t[i], NULL, burst_main, &b[i]), 0);
	}
	for (int i = 0; i < POOL_SIZE; i++) {
		pthread_join(t[i], NULL);
		ok += b[i].status == 200;
	}
	return ok;
}

/* The database restarts while nobody reads: the query service's pooled
 * connections all died with it, unnoticed. The reads after it is back
 * still succeed: a dead connection is replaced, not reported as 503. */
START_TEST(database_restart_quiet)
{
	char url[256], known[UID_TEXT_SIZE], errstr[512];
	int before, after;

	/* As many reads by id at once as connections, each starting at
	 * once (by default two statements share them, the second only when
	 * the first is slow), so that a burst uses every one. */
	static const char *const query_env[] = {"DB_LOOKUP_STATEMENTS=" TEXT(POOL_SIZE),
	                                        "DB_LOOKUP_SPREAD_MS=0", NULL};

	fault_start(STACK_CONSUMER, NULL);
	fault_start(STACK_QUERY, query_env);
	ck_assert_msg(stack_sentinel(0, 15000, known, errstr, sizeof(errstr)) == 0, "%s", errstr);
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", known);
	before = read_burst(url); /* every pooled connection in use once */
	ck_assert_msg(fault_script("pg.sh", "stop") == 0, "scripts/pg.sh stop failed");
	ck_assert_msg(fault_script("pg.sh", "start") == 0, "scripts/pg.sh start failed");
	after = read_burst(url);
	after += read_burst(url);
	printf("  database restarted while idle: %d of %d reads before, %d of %d after answered "
	       "200\n",
	       before, POOL_SIZE, after, 2 * POOL_SIZE);
	ck_assert_int_eq(before, POOL_SIZE);
	ck_assert_msg(after == 2 * POOL_SIZE, "%d of %d reads after the restart failed",
	              2 * POOL_SIZE - after, 2 * POOL_SIZE);
}
END_TEST

/* A listening socket on 127.0.0.1 nobody accepts on: a frozen server. */
static int listen_frozen(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Waits up to timeout_ms for series on url to reach want. */
static double wait_metric(const char *url, const char *series, double want, long timeout_ms)
{
	const long until = clock_mono_ms() + timeout_ms;
	double v;

	while ((v = fault_metric(url, series)) != want && clock_mono_ms() < until)
		proc_sleep_ms(200);
	return v;
}

#define MH_MESSAGES 2000
#define MH_CHUNK 200
#define MH_OUTAGE_MS 8000

/* DB_URL lists two hosts: first a frozen server (an old primary that
 * accepts and never answers), then the real one, with
 * target_session_attrs=read-write (the consumer's: read-only, which it
 * overrides). The consumer and the query service get
 * past the frozen host on every connection, and ride out a restart of the
 * real one without a restart of their own: 503 on /ready meanwhile, 200
 * again by themselves, the feed connected again, and every message
 * exactly one row, none dead-lettered. */
START_TEST(database_restart_multi_host)
{
	char url[256], known[UID_TEXT_SIZE], errstr[512], db_env[512], consumer_db_env[512];
	const char *at = strchr(stack.db_url, '@');
	const char *env[] = {db_env, NULL};
	const char *consumer_env_mh[] = {consumer_db_env, "DB_RETRY_MAX_MS=2000", NULL};
	long down, starting, up, consumer_back, query_back, rows;
	int64_t dlq_before = 0, dlq_after = 0;
	size_t n, n_503, q_n, q_503, bad;
	double reconnects_before, reconnects_after, feed;
	int frozen_port, frozen = listen_frozen(&frozen_port);

	ck_assert_ptr_nonnull(at);
	ck_assert_ptr_null(strchr(at, '?'));
	snprintf(db_env, sizeof(db_env), "DB_URL=%.*s127.0.0.1:%d,%s?target_session_attrs=read-write",
	         (int)(at + 1 - stack.db_url), stack.db_url, frozen_port, at + 1);
	/* The consumer's even asks for a read-only session: it connects with
	 * read-write whatever DB_URL says, so it gets the primary anyway. */
	snprintf(consumer_db_env, sizeof(consumer_db_env),
	         "DB_URL=%.*s127.0.0.1:%d,%s?target_session_attrs=read-only",
	         (int)(at + 1 - stack.db_url), stack.db_url, frozen_port, at + 1);
	fault_start(STACK_CONSUMER, consumer_env_mh);
	fault_start(STACK_QUERY, env);
	ck_assert_msg(stack_sentinel(0, 30000, known, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_msg(topic_watermark_sum(stack.broker, stack.dlq_topic, &dlq_before, errstr,
	                                  sizeof(errstr)) == 0,
	              "%s", errstr);
	stack_url(url, sizeof(url), STACK_QUERY, "/metrics");
	ck_assert(wait_metric(url, "feed_connected", 1, 30000) == 1);
	reconnects_before = fault_metric(url, "feed_reconnects_total");

	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	fault_probe_start(&consumer_ready, url, 250, 5000);
	stack_url(url, sizeof(url), STACK_QUERY, "/ready");
	fault_probe_start(&query_ready, url, 250, 5000);
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", known);
	fault_probe_start(&readers[0], url, 100, 5000);
	fault_stream_start(&stream, MH_MESSAGES, MH_CHUNK, CHUNK_INTERVAL_MS);
	proc_sleep_ms(1500);

	ck_assert_msg(fault_script("pg.sh", "stop") == 0, "scripts/pg.sh stop failed");
	down = clock_mono_ms();
	proc_sleep_ms(MH_OUTAGE_MS);
	starting = clock_mono_ms();
	ck_assert_msg(fault_script("pg.sh", "start") == 0, "scripts/pg.sh start failed");
	up = clock_mono_ms();

	fault_stream_join(&stream, false);
	rows = fault_wait_rows(stream.ids, MH_MESSAGES, ROWS_MS);
	proc_sleep_ms(1000);
	stop_probes();
	stack_url(url, sizeof(url), STACK_QUERY, "/metrics");
	feed = wait_metric(url, "feed_connected", 1, 30000);
	reconnects_after = fault_metric(url, "feed_reconnects_total");
	ck_assert_msg(topic_watermark_sum(stack.broker, stack.dlq_topic, &dlq_after, errstr,
	                                  sizeof(errstr)) == 0,
	              "%s", errstr);
	close(frozen);

	ck_assert_msg(svc_alive(&stack.svc[STACK_CONSUMER]), "the consumer exited");
	ck_assert_msg(svc_alive(&stack.svc[STACK_QUERY]), "the query service exited");
	window(&consumer_ready.log, down + NOTICE_MS, starting, &n, &n_503);
	window(&query_ready.log, down, starting, &q_n, &q_503);
	consumer_back = recovered_at(&consumer_ready.log, up, &bad);
	query_back = recovered_at(&readers[0].log, up, &bad);
	printf("  multi-host DB_URL (a frozen host first), database down %.1f s: consumer /ready "
	       "503 on %zu of %zu probes, query /ready 503 on %zu of %zu; back: consumer %.2f s, "
	       "reads %.2f s; %ld of %d rows; feed reconnects %.0f; %lld dead letters\n",
	       fault_secs(starting - down), n_503, n, q_503, q_n, fault_secs(consumer_back - up),
	       fault_secs(query_back - up), rows, MH_MESSAGES, reconnects_after - reconnects_before,
	       (long long)(dlq_after - dlq_before));

	ck_assert_msg(rows == MH_MESSAGES, "%ld rows for the %d messages, want exactly %d", rows,
	              MH_MESSAGES, MH_MESSAGES);
	ck_assert_msg(n >= 5 && n_503 == n, "consumer /ready: %zu of %zu probes during the outage "
	              "were not 503", n - n_503, n);
	/* Each of its /ready takes up to DB_POOL_TIMEOUT_MS (2 s) then: the
	 * frozen host's share, the real one refused, the frozen one again. */
	ck_assert_msg(q_n >= 2 && q_503 == q_n, "query /ready: %zu of %zu probes during the outage "
	              "were not 503", q_n - q_503, q_n);
	ck_assert_msg(consumer_back >= 0, "the consumer's /ready never answered 200 again");
	ck_assert_msg(query_back >= 0, "the query service's reads never answered 200 again");
	ck_assert_msg(feed == 1, "the feed did not connect again (feed_connected %.0f)", feed);
	ck_assert_msg(reconnects_after > reconnects_before, "feed_reconnects_total did not move");
	ck_assert_msg(dlq_after == dlq_before, "%lld messages dead-lettered during the outage",
	              (long long)(dlq_after - dlq_before));
	fault_log_free(&consumer_ready.log);
	fault_log_free(&query_ready.log);
	fault_log_free(&readers[0].log);
}
END_TEST

Suite *make_database_suite(void)
{
	Suite *s = suite_create("database");
	TCase *tc = tcase_create("down");

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, database_down);
	tcase_add_test(tc, database_restart_quiet);
	suite_add_tcase(s, tc);

	tc = tcase_create("multi_host");
	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, database_restart_multi_host);
	suite_add_tcase(s, tc);
	return s;
}
