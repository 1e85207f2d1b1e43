/* database_test: the PostgreSQL primary SIGKILLed under a steady stream of
 * POSTs and reads, and its standby promoted (pg_ctl promote). The services
 * are not restarted: the consumer finds the new primary through the
 * multi-host DB_URL (target_session_attrs=read-write) by itself, and every
 * ticket answered 200 — before, during and after — is exactly one row there;
 * the query service answers the reads of a known record again from the
 * standby that became the primary.
 *
 * Replication is asynchronous, so the worst case is made to happen rather
 * than hoped for: the standby is stopped for a while before the kill, and
 * the primary is killed only once a ticket accepted meanwhile is a row on
 * it. The standby then comes back without those rows (its primary is
 * gone) and is promoted; the consumer, which holds back the offsets of rows
 * no standby has flushed (CONSUMER_DURABLE_STANDBYS=1, cluster.c), reads
 * those messages again and writes them to the new primary. Without that,
 * their offsets would be committed and the rows lost. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "cluster.h"
#include "store.h"

#define DOWN_MS 3000      /* the primary gone before the promotion */
#define BEHIND_MS 1500    /* the standby stopped before the kill */
#define PRIMARY_ROW_MS 30000 /* a ticket of that time is a row on the primary */
#define RECOVERY_MS 60000 /* a ticket sent after the promotion is a row */
#define READ_MS 60000     /* a read answers 200 again after the promotion */

static struct fault_probe reader, consumer_ready;

static void setup(void)
{
	memset(&cluster_load, 0, sizeof(cluster_load));
	memset(&reader, 0, sizeof(reader));
	memset(&consumer_ready, 0, sizeof(consumer_ready));
}

static void teardown(void)
{
	fault_probe_stop(&reader);
	fault_probe_stop(&consumer_ready);
	fault_log_free(&reader.log);
	fault_log_free(&consumer_ready.log);
	cluster_teardown();
}

/* The first ticket answered 200 for a request sent after t, into id; false
 * if none yet. */
static bool ticket_after(long t, char *id)
{
	struct fault_log *l = &cluster_load.log;
	bool found = false;

	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n && !found; i++) {
		if (l->a[i].sent_ms >= t && l->a[i].status == 200) {
			memcpy(id, l->a[i].id, UID_TEXT_SIZE);
			found = true;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return found;
}

/* Counts the answers of l sent after t: all, and those that were 200; the
 * answer time of the first 200 goes to *first (-1: none). */
static void answers_after(struct fault_log *l, long t, size_t *n, size_t *ok, long *first)
{
	*n = *ok = 0;
	*first = -1;
	for (size_t i = 0; i < l->n; i++) {
		if (l->a[i].sent_ms < t)
			continue;
		(*n)++;
		if (l->a[i].status == 200) {
			(*ok)++;
			if (*first < 0 || l->a[i].answered_ms < *first)
				*first = l->a[i].answered_ms;
		}
	}
}

START_TEST(primary_killed)
{
	char known[UID_TEXT_SIZE], id[UID_TEXT_SIZE], lost[UID_TEXT_SIZE], url[256], errstr[512];
	struct http_resp resp = {0};
	long behind, killed, promoted, row_at, count;
	size_t n, ok, rn, rok;
	long first_read, first_ready, first_since_kill;

	cluster_start_load();
	ck_assert_msg(ticket_after(0, known), "no POST answered 200 before the fault");
	ck_assert_msg(wait_record(known, READ_TIMEOUT_MS, &resp) == 0,
	              "ticket %s not readable (last answer %ld)", known, resp.status);
	http_resp_clear(&resp);
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", known);
	fault_probe_start(&reader, url, 200, 5000);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	fault_probe_start(&consumer_ready, url, 250, 5000);
	proc_sleep_ms(1000);

	/* Rows the standby will never get: accepted while it is down, written
	 * to the primary before the primary dies. */
	cluster_script("pg.sh", "stop-standby");
	behind = clock_mono_ms();
	proc_sleep_ms(BEHIND_MS);
	for (;;) {
		if (ticket_after(behind, lost) &&
		    store_count(stack.db_url, lost, &count, errstr, sizeof(errstr)) == 0 && count == 1)
			break;
		ck_assert_msg(clock_mono_ms() - behind < PRIMARY_ROW_MS,
		              "no ticket accepted while the standby was down became a row on the "
		              "primary within %d s (consumer log: %s)",
		              PRIMARY_ROW_MS / 1000, stack.svc[STACK_CONSUMER].log_path);
		proc_sleep_ms(100);
	}

	cluster_script("pg.sh", "kill");
	killed = clock_mono_ms();
	cluster_script("pg.sh", "start-standby"); /* from its own WAL: without those rows */
	proc_sleep_ms(DOWN_MS);
	cluster_script("pg.sh", "promote");
	promoted = clock_mono_ms();

	/* The consumer writes again, to the new primary, by itself. */
	for (;;) {
		if (ticket_after(promoted, id) &&
		    store_count(stack.db_url, id, &count, errstr, sizeof(errstr)) == 0 &&
		    count == 1)
			break;
		ck_assert_msg(svc_alive(&stack.svc[STACK_CONSUMER]),
		              "the consumer exited after the promotion (log: %s)",
		              stack.svc[STACK_CONSUMER].log_path);
		ck_assert_msg(clock_mono_ms() - promoted < RECOVERY_MS,
		              "no ticket sent after the promotion became a row within %d s (consumer "
		              "log: %s)",
		              RECOVERY_MS / 1000, stack.svc[STACK_CONSUMER].log_path);
		proc_sleep_ms(200);
	}
	row_at = clock_mono_ms();
	printf("  primary killed: standby promoted %.1f s after the kill; a ticket sent after the "
	       "promotion was a row %.1f s after it\n",
	       fault_secs(promoted - killed), fault_secs(row_at - promoted));

	/* Reads of the known record answer 200 again. */
	for (;;) {
		answers_after(&reader.log, promoted, &rn, &rok, &first_read);
		if (first_read >= 0)
			break;
		ck_assert_msg(clock_mono_ms() - promoted < READ_MS,
		              "the query service answered no read of %s with 200 in the %d s after the "
		              "promotion (%zu reads; log: %s)",
		              known, READ_MS / 1000, rn, stack.svc[STACK_QUERY].log_path);
		proc_sleep_ms(200);
	}
	fault_probe_stop(&reader);
	fault_probe_stop(&consumer_ready);
	answers_after(&reader.log, killed, &rn, &rok, &first_since_kill);
	answers_after(&consumer_ready.log, promoted, &n, &ok, &first_ready);
	printf("  primary killed: reads of a known record since the kill: %zu, %zu of them 200; "
	       "the first 200 after the promotion %.1f s after it; consumer /ready: %zu of %zu "
	       "probes 200 since the promotion\n",
	       rn, rok, fault_secs(first_read - promoted), ok, n);
	ck_assert_msg(svc_alive(&stack.svc[STACK_CONSUMER]), "the consumer exited (log: %s)",
	              stack.svc[STACK_CONSUMER].log_path);
	ck_assert_msg(svc_alive(&stack.svc[STACK_QUERY]), "the query service exited (log: %s)",
	              stack.svc[STACK_QUERY].log_path);
	/* Said apart, as it is what the standby never had: the consumer reads
	 * it again and writes it to the new primary, in its turn. */
	for (;;) {
		ck_assert_msg(store_count(stack.db_url, lost, &count, errstr, sizeof(errstr)) == 0,
		              "counting ticket %s: %s", lost, errstr);
		if (count == 1)
			break;
		ck_assert_msg(count == 0 && clock_mono_ms() - promoted < RECOVERY_MS,
		              "ticket %s, a row on the old primary only (the standby was stopped), is "
		              "%ld rows on the promoted standby %d s after the promotion: the consumer "
		              "did not write it again (log: %s)",
		              lost, count, RECOVERY_MS / 1000, stack.svc[STACK_CONSUMER].log_path);
		proc_sleep_ms(200);
	}
	printf("  primary killed: ticket %s, a row on the old primary only, is one row on the "
	       "promoted standby %.1f s after the promotion\n",
	       lost, fault_secs(clock_mono_ms() - promoted));
	cluster_check_answers("primary killed", 0, 0, 0);
}
END_TEST

Suite *make_database_suite(void)
{
	Suite *s = suite_create("database");
	TCase *tc = tcase_create("primary_killed");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, primary_killed);
	suite_add_tcase(s, tc);
	return s;
}
