/* freeze_test: PostgreSQL freezes (SIGSTOP on every process of the cluster)
 * for 15 s while tickets are posted and read. A frozen server is the hard
 * case of a hung connection: its kernel still accepts connections and
 * acknowledges data, so neither TCP nor libpq's connect_timeout notices,
 * and the server cannot send a statement_timeout error either. The
 * services' own deadlines must: no read waits longer than
 * DB_POOL_TIMEOUT_MS + 1 s (it answers 503 with Retry-After), /health
 * answers at once throughout, the query service's /ready answers 503 in
 * time, the consumer's /ready goes 503, and after SIGCONT every ticket the
 * command service accepted is a row and both services serve again. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"

#define FREEZE_MS 15000
#define POOL_TIMEOUT_MS 2000 /* the query service's DB_POOL_TIMEOUT_MS */
#define READ_BOUND_MS (POOL_TIMEOUT_MS + 1000)
#define HEALTH_BOUND_MS 1000 /* generous: /health touches nothing */
#define READERS 12           /* more than the pool's 8: reads are batched */
#define CLIENTS 4
#define CLIENT_PAUSE_MS 20
#define PROBE_TIMEOUT_MS 30000 /* longer than the freeze: a hang shows as one */
#define RECOVERY_MS 30000
#define ROWS_MS 60000

static const char *const query_env[] = {"DB_POOL_TIMEOUT_MS=2000", NULL};

static struct fault_load load;
static struct fault_probe readers[READERS], query_health, query_ready, consumer_health,
    consumer_ready;

static void setup(void)
{
	memset(&load, 0, sizeof(load));
	memset(readers, 0, sizeof(readers));
	memset(&query_health, 0, sizeof(query_health));
	memset(&query_ready, 0, sizeof(query_ready));
	memset(&consumer_health, 0, sizeof(consumer_health));
	memset(&consumer_ready, 0, sizeof(consumer_ready));
}

static void stop_clients(void)
{
	fault_load_stop(&load);
	for (int i = 0; i < READERS; i++)
		fault_probe_stop(&readers[i]);
	fault_probe_stop(&query_health);
	fault_probe_stop(&query_ready);
	fault_probe_stop(&consumer_health);
	fault_probe_stop(&consumer_ready);
}

static void teardown(void)
{
	stop_clients();
	fault_teardown(NULL, 0); /* resumes the database if a check failed while frozen */
}

/* What a set of probes saw. */
struct tally {
	size_t n, unanswered, over; /* all; no HTTP answer; took longer than the bound */
	long max_ms;                /* the longest wait */
	size_t frozen, frozen_503;  /* sent and answered within [from, to); of them 503 + Retry-After */
	size_t frozen_200;
};

static void tally(const struct fault_log *l, long bound_ms, long from, long to, struct tally *t)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct fault_answer *a = &l->a[i];
		const long waited = a->answered_ms - a->sent_ms;
		t->n++;
		t->unanswered += a->status == 0;
		t->over += waited > bound_ms;
		if (waited > t->max_ms)
			t->max_ms = waited;
		if (a->sent_ms >= from && a->answered_ms < to) {
			t->frozen++;
			t->frozen_503 += a->status == 503 && a->retry_after;
			t->frozen_200 += a->status == 200;
		}
	}
}

/* When the first probe sent after t answered 200, or -1. */
static long back_at(const struct fault_log *l, long t)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->a[i].sent_ms >= t && l->a[i].status == 200)
			return l->a[i].answered_ms;
	}
	return -1;
}

START_TEST(database_frozen)
{
	char url[256], known[UID_TEXT_SIZE], errstr[512];
	long frozen, resumed, rows, reads_back = -1, consumer_back;
	struct tally reads = {0}, qh = {0}, qr = {0}, ch = {0}, cr = {0};
	char(*tickets)[UID_TEXT_SIZE];
	size_t n_tickets;
	bool all_back = true;

	fault_start(STACK_COMMAND, NULL);
	fault_start(STACK_CONSUMER, NULL);
	fault_start(STACK_QUERY, query_env);
	ck_assert_msg(stack_sentinel(0, 15000, known, errstr, sizeof(errstr)) == 0, "%s", errstr);

	fault_load_start(&load, CLIENTS, CLIENT_PAUSE_MS);
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", known);
	for (int i = 0; i < READERS; i++)
		fault_probe_start(&readers[i], url, 20, PROBE_TIMEOUT_MS);
	stack_url(url, sizeof(url), STACK_QUERY, "/health");
	fault_probe_start(&query_health, url, 100, PROBE_TIMEOUT_MS);
	stack_url(url, sizeof(url), STACK_QUERY, "/ready");
	fault_probe_start(&query_ready, url, 250, PROBE_TIMEOUT_MS);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/health");
	fault_probe_start(&consumer_health, url, 100, PROBE_TIMEOUT_MS);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	fault_probe_start(&consumer_ready, url, 250, PROBE_TIMEOUT_MS);
	proc_sleep_ms(2000);

	fault_db_pause(true);
	frozen = clock_mono_ms();
	proc_sleep_ms(FREEZE_MS);
	fault_db_pause(false);
	resumed = clock_mono_ms();

	/* Reads and readiness come back by themselves. */
	for (long until = resumed + RECOVERY_MS; clock_mono_ms() < until;) {
		proc_sleep_ms(200);
		if (back_at(&query_ready.log, resumed) >= 0 && back_at(&consumer_ready.log, resumed) >= 0)
			break;
	}
	proc_sleep_ms(1000);
	stop_clients();

	ck_assert_msg(svc_alive(&stack.svc[STACK_CONSUMER]), "the consumer exited (log: %s)",
	              stack.svc[STACK_CONSUMER].log_path);
	ck_assert_msg(svc_alive(&stack.svc[STACK_QUERY]), "the query service exited (log: %s)",
	              stack.svc[STACK_QUERY].log_path);

	/* During the freeze: a read sent after the first deadline could have
	 * passed and answered before the resume must be a 503. */
	for (int i = 0; i < READERS; i++) {
		long t = back_at(&readers[i].log, resumed);
		tally(&readers[i].log, READ_BOUND_MS, frozen, resumed, &reads);
		if (t < 0)
			all_back = false;
		else if (t > reads_back)
			reads_back = t;
	}
	if (!all_back)
		reads_back = -1;
	tally(&query_health.log, HEALTH_BOUND_MS, frozen, resumed, &qh);
	tally(&query_ready.log, READ_BOUND_MS, frozen + READ_BOUND_MS, resumed, &qr);
	tally(&consumer_health.log, HEALTH_BOUND_MS, frozen, resumed, &ch);
	tally(&consumer_ready.log, PROBE_TIMEOUT_MS, frozen, resumed, &cr);
	consumer_back = back_at(&consumer_ready.log, resumed);

	tickets = fault_tickets(&load.log, &n_tickets);
	rows = fault_wait_rows(tickets, n_tickets, ROWS_MS);

	printf("  database frozen %.1f s: reads %zu (longest %ld ms, %zu over %d ms, %zu "
	       "unanswered), during the freeze %zu of %zu were 503 with Retry-After\n",
	       fault_secs(resumed - frozen), reads.n, reads.max_ms, reads.over, READ_BOUND_MS,
	       reads.unanswered, reads.frozen_503, reads.frozen);
	printf("  /health: query longest %ld ms (%zu over %d ms, %zu unanswered), consumer longest "
	       "%ld ms (%zu over, %zu unanswered)\n",
	       qh.max_ms, qh.over, HEALTH_BOUND_MS, qh.unanswered, ch.max_ms, ch.over,
	       ch.unanswered);
	printf("  /ready: query longest %ld ms, 503 on %zu of %zu probes in the freeze; consumer "
	       "503 on %zu of %zu probes in the freeze (longest %ld ms)\n",
	       qr.max_ms, qr.frozen_503, qr.frozen, cr.frozen_503, cr.frozen, cr.max_ms);
	printf("  after the resume: reads back %.2f s, consumer ready %.2f s; %ld of %zu accepted "
	       "tickets are rows\n",
	       reads_back < 0 ? -1.0 : fault_secs(reads_back - resumed),
	       consumer_back < 0 ? -1.0 : fault_secs(consumer_back - resumed), rows, n_tickets);

	ck_assert_msg(n_tickets > 100, "only %zu tickets accepted", n_tickets);
	ck_assert_msg(rows == (long)n_tickets, "%ld rows for %zu accepted tickets", rows, n_tickets);
	ck_assert_msg(reads.unanswered == 0 && reads.over == 0,
	              "reads: %zu unanswered, %zu waited over %d ms (longest %ld ms)",
	              reads.unanswered, reads.over, READ_BOUND_MS, reads.max_ms);
	ck_assert_msg(reads.frozen >= 20 && reads.frozen_503 == reads.frozen,
	              "reads in the freeze: %zu of %zu were not 503 with Retry-After",
	              reads.frozen - reads.frozen_503, reads.frozen);
	ck_assert_msg(qh.unanswered == 0 && qh.over == 0 && ch.unanswered == 0 && ch.over == 0,
	              "/health waited on the database: query longest %ld ms, consumer %ld ms",
	              qh.max_ms, ch.max_ms);
	ck_assert_msg(qr.unanswered == 0 && qr.over == 0,
	              "query /ready: %zu unanswered, %zu over %d ms (longest %ld ms)", qr.unanswered,
	              qr.over, READ_BOUND_MS, qr.max_ms);
	ck_assert_msg(qr.frozen >= 3 && qr.frozen_503 == qr.frozen,
	              "query /ready in the freeze: %zu of %zu probes were not 503",
	              qr.frozen - qr.frozen_503, qr.frozen);
	ck_assert_msg(cr.unanswered == 0 && cr.frozen_503 >= 1,
	              "consumer /ready never said 503 in the freeze (%zu probes, %zu unanswered)",
	              cr.frozen, cr.unanswered);
	ck_assert_msg(reads_back >= 0, "reads never answered 200 again after the resume");
	ck_assert_msg(consumer_back >= 0, "the consumer's /ready never answered 200 again");
	free(tickets);
	for (int i = 0; i < READERS; i++)
		fault_log_free(&readers[i].log);
	fault_log_free(&query_health.log);
	fault_log_free(&query_ready.log);
	fault_log_free(&consumer_health.log);
	fault_log_free(&consumer_ready.log);
	fault_log_free(&load.log);
}
END_TEST

Suite *make_freeze_suite(void)
{
	Suite *s = suite_create("freeze");
	TCase *tc = tcase_create("frozen");

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, database_frozen);
	suite_add_tcase(s, tc);
	return s;
}
