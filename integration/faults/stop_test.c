/* stop_test: SIGTERM each service in turn while clients post tickets and
 * read records: each exits 0 within 10 s and is started again, and every
 * ticket answered 200 at any time is a row and readable afterwards.
 *
 * Every POST gets an HTTP answer (200 or 503), or a refused connection
 * while the command service is down (from its SIGTERM until it is ready
 * again): none is cut off, those in flight when SIGTERM arrives included
 * (the command service batches for 50 ms here, so that the clients' POSTs
 * are in flight at any moment). A crash, or a stop that drops answers,
 * fails. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"

#define CLIENTS 8
#define CLIENT_PAUSE_MS 5
#define READERS 4
#define ROWS_MS 60000

/* Each POST waits for a batch of 50 ms: always some in flight. */
static const char *const command_env[] = {"KAFKA_PROPERTIES=linger.ms=50", NULL};

static struct fault_load load;
static struct fault_probe readers[READERS];

static void setup(void)
{
	memset(&load, 0, sizeof(load));
	memset(readers, 0, sizeof(readers));
}

static void stop_clients(void)
{
	fault_load_stop(&load);
	for (int i = 0; i < READERS; i++)
		fault_probe_stop(&readers[i]);
}

static void teardown(void)
{
	stop_clients();
	fault_teardown(NULL, 0);
}

/* Returns 2 ms into a wave of POSTs. The clients fall into step with the
 * command service's 50 ms batches: all answered together, all pausing 5 ms,
 * all sending again. A SIGTERM sent in the pause would find no POST in
 * flight, so the test waits for the pause (none pending), then for the
 * next wave's first POST: its batch holds it for 50 ms. (Clients out of
 * step always have POSTs pending; then the 2 s limit ends the wait.) */
static void await_wave(void)
{
	const long until = clock_mono_ms() + 2000;
	const struct timespec tick = {.tv_nsec = 100000};

	while (atomic_load(&load.pending) > 0 && clock_mono_ms() < until)
		nanosleep(&tick, NULL);
	while (atomic_load(&load.pending) == 0 && clock_mono_ms() < until)
		nanosleep(&tick, NULL);
	proc_sleep_ms(2);
}

START_TEST(sigterm_under_load)
{
	static const enum stack_service order[] = {STACK_COMMAND, STACK_CONSUMER, STACK_QUERY};
	char url[256], known[UID_TEXT_SIZE], errstr[512], (*ids)[UID_TEXT_SIZE];
	size_t n_ids, readable, count[4] = {0}; /* 200, 503, refused while down, other */
	size_t in_flight = 0, cut = 0;
	int other_status = 0;
	long rows, term = 0, back = 0, first_cut = -1; /* the command service's downtime */

	fault_start(STACK_COMMAND, command_env);
	fault_start(STACK_CONSUMER, NULL);
	fault_start(STACK_QUERY, NULL);
	ck_assert_msg(stack_sentinel(0, 15000, known, errstr, sizeof(errstr)) == 0, "%s", errstr);
	fault_load_start(&load, CLIENTS, CLIENT_PAUSE_MS);
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", known);
	for (int i = 0; i < READERS; i++)
		fault_probe_start(&readers[i], url, 10, 5000);
	proc_sleep_ms(2000);

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const size_t before = fault_log_count(&load.log);
		if (order[i] == STACK_COMMAND)
			await_wave();
		const long sent_term = clock_mono_ms();
		long took = fault_sigterm(&stack.svc[order[i]]), restarted;
		proc_sleep_ms(1000); /* the clients keep at it meanwhile */
		restarted = clock_mono_ms();
		fault_start(order[i], order[i] == STACK_COMMAND ? command_env : NULL);
		if (order[i] == STACK_COMMAND) {
			term = sent_term;
			back = clock_mono_ms();
		}
		printf("  %s: exited 0 %.2f s after SIGTERM under load (%zu tickets "
		       "requested meanwhile); ready again %.2f s after its restart\n",
		       stack_name(order[i]), fault_secs(took), fault_log_count(&load.log) - before,
		       fault_secs(clock_mono_ms() - restarted));
		proc_sleep_ms(2000);
	}
	stop_clients();

	for (size_t i = 0; i < load.log.n; i++) {
		const struct fault_answer *a = &load.log.a[i];
		if (a->sent_ms < term && a->answered_ms >= term) {
			in_flight++; /* sent before SIGTERM, answered after */
			if (a->status != 200 && a->status != 503)
				ck_abort_msg("a POST in flight when SIGTERM arrived got %d (sent %ld ms "
				             "before it)", a->status, term - a->sent_ms);
		}
		switch (a->status) {
		case 200: count[0]++; break;
		case 503: count[1]++; break;
		case 0:
			if (a->refused && a->sent_ms >= term && a->answered_ms <= back) {
				count[2]++;
			} else if (cut++ == 0) {
				first_cut = a->sent_ms - term;
			}
			break;
		default:
			if (count[3]++ == 0)
				other_status = a->status;
		}
	}
	for (int r = 0; r < READERS; r++) {
		for (size_t i = 0; i < readers[r].log.n; i++) {
			const int st = readers[r].log.a[i].status;
			ck_assert_msg(st == 200 || st == 0,
			              "a read of a stored record answered %d", st);
		}
	}
	ids = fault_tickets(&load.log, &n_ids);
	rows = fault_wait_rows(ids, n_ids, ROWS_MS);
	readable = fault_count_readable(ids, n_ids);
	printf("  %zu POSTs: %zu answered 200, %zu 503, %zu refused while the command service was "
	       "down, %zu cut off without an answer, %zu other; %zu were in flight when SIGTERM "
	       "arrived, all answered; %ld of the 200 tickets are rows, %zu readable\n",
	       load.log.n, count[0], count[1], count[2], cut, count[3], in_flight, rows, readable);
	ck_assert_msg(count[3] == 0, "%zu answers neither 200 nor 503 (first: %d)", count[3],
	              other_status);
	ck_assert_msg(cut == 0, "%zu POSTs had no answer and no refused connection, or were refused "
	              "while the command service was up (first sent %ld ms after its SIGTERM)", cut,
	              first_cut);
	ck_assert_msg(in_flight > 0, "no POST was in flight when SIGTERM arrived");
	ck_assert_msg(n_ids > 0, "no ticket was answered 200");
	ck_assert_msg(rows == (long)n_ids, "%ld of %zu tickets answered 200 are rows", rows, n_ids);
	ck_assert_msg(readable == n_ids, "%zu of %zu tickets answered 200 are readable", readable,
	              n_ids);
	free(ids);
	fault_log_free(&load.log);
	for (int i = 0; i < READERS; i++)
		fault_log_free(&readers[i].log);
}
END_TEST

Suite *make_stop_suite(void)
{
	Suite *s = suite_create("stop");
	TCase *tc = tcase_create("sigterm");

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sigterm_under_load);
	suite_add_tcase(s, tc);
	return s;
}
