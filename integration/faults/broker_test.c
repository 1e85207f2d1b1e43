/* broker_test: the Kafka broker becomes unavailable while clients keep
 * posting — frozen (SIGSTOP) for longer than PUBLISH_TIMEOUT_MS, then
 * resumed; and, separately, stopped and started again.
 *
 * "During the outage" means: sent after the broker was frozen (or had
 * exited) and answered before it was resumed (or before its start began).
 * Every such answer is a 503 with Retry-After, never a 200; /ready says
 * 503 in that window and 200 after; the same service process recovers; and
 * every ticket answered 200 — before, during or after — is readable. Each
 * 503 names the id it tried (a message that timed out may still be stored
 * by the broker later: the client can look for it, or retry with an
 * Idempotency-Key). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"

#define CLIENTS 8
#define CLIENT_PAUSE_MS 20
#define OUTAGE_MS 6000 /* three publish timeouts */
#define RECOVERY_MS 30000
#define READABLE_MS 60000

static const char *const command_env[] = {"PUBLISH_TIMEOUT_MS=2000", NULL};

static struct fault_load load;
static struct fault_probe ready;

static void setup(void)
{
	memset(&load, 0, sizeof(load));
	memset(&ready, 0, sizeof(ready));
}

static void teardown(void)
{
	fault_load_stop(&load);
	fault_probe_stop(&ready);
	fault_teardown(NULL, 0);
}

static void start_with_load(void)
{
	char url[128];

	fault_start(STACK_COMMAND, command_env);
	fault_start(STACK_CONSUMER, NULL);
	fault_start(STACK_QUERY, NULL);
	fault_load_start(&load, CLIENTS, CLIENT_PAUSE_MS);
	stack_url(url, sizeof(url), STACK_COMMAND, "/ready");
	fault_probe_start(&ready, url, 250, 5000);
	proc_sleep_ms(2000); /* traffic before the fault */
}

/* The first answer in l sent after t with the given status into *out;
 * false if there is none (yet). */
static bool first_after(struct fault_log *l, long t, int status, struct fault_answer *out)
{
	bool found = false;

	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n; i++) {
		if (l->a[i].sent_ms >= t && l->a[i].status == status &&
		    (!found || l->a[i].answered_ms < out->answered_ms)) {
			*out = l->a[i];
			found = true;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return found;
}

/* Waits until both a ticket and /ready answered 200 for requests sent after
 * t; returns the later of the two answers' times (ms after t). */
static long await_recovery(long t)
{
	const long deadline = clock_mono_ms() + RECOVERY_MS;
	struct fault_answer ticket, rd;

	for (;;) {
		bool got_ticket = first_after(&load.log, t, 200, &ticket);
		bool got_ready = first_after(&ready.log, t, 200, &rd);
		if (got_ticket && got_ready)
			break;
		ck_assert_msg(clock_mono_ms() < deadline,
		              "no recovery %d ms after the broker came back: ticket %s, /ready %s",
		              RECOVERY_MS, got_ticket ? "200" : "never 200",
		              got_ready ? "200" : "never 200");
		proc_sleep_ms(50);
	}
	return (ticket.answered_ms > rd.answered_ms ? ticket.answered_ms : rd.answered_ms) - t;
}

/* Stops the clients after some traffic past recovery, then asserts the
 * outage window [from, to) and that every 200 ticket is readable. */
static void check_outage(const char *what, long from, long to, long recovered_ms)
{
	size_t during = 0, during_503 = 0, n_200 = 0, n_503 = 0, no_id = 0, other = 0,
	       ready_during = 0, ready_503 = 0, n_ids = 0, readable;
	int other_status = 0;
	char (*ids)[UID_TEXT_SIZE];
	long rows;

	proc_sleep_ms(2000); /* traffic after recovery */
	fault_load_stop(&load);
	fault_probe_stop(&ready);
	ck_assert_msg(svc_alive(&stack.svc[STACK_COMMAND]), "the command service exited (log: %s)",
	              stack.svc[STACK_COMMAND].log_path);

	for (size_t i = 0; i < load.log.n; i++) {
		const struct fault_answer *a = &load.log.a[i];
		if (a->status == 200) {
			n_200++;
		} else if (a->status == 503) {
			n_503++;
			no_id += a->id[0] == '\0';
		} else if (other++ == 0) {
			other_status = a->status;
		}
		if (a->sent_ms >= from && a->answered_ms < to) {
			during++;
			if (a->status == 503 && a->retry_after)
				during_503++;
			ck_assert_msg(a->status != 200,
			              "%s: a 200 for a request sent %.3f s into the outage and answered "
			              "%.3f s before its end",
			              what, fault_secs(a->sent_ms - from), fault_secs(to - a->answered_ms));
		}
	}
	for (size_t i = 0; i < ready.log.n; i++) {
		const struct fault_answer *a = &ready.log.a[i];
		if (a->sent_ms >= from && a->answered_ms < to) {
			ready_during++;
			if (a->status == 503 && a->retry_after)
				ready_503++;
		}
	}
	printf("  %s: %zu requests (%zu answered 200); during the %.1f s outage %zu answered, "
	       "%zu of them 503 with Retry-After; /ready during: %zu of %zu 503; a ticket and /ready "
	       "answered 200 again %.2f s after the broker was resumed (or its start began)\n",
	       what, load.log.n, n_200, fault_secs(to - from), during, during_503, ready_503,
	       ready_during, fault_secs(recovered_ms));
	ck_assert_msg(other == 0, "%s: %zu answers neither 200 nor 503 (first: %d)", what, other,
	              other_status);
	ck_assert_msg(no_id == 0, "%s: %zu of %zu 503 answers name no UUID id that was tried", what,
	              no_id, n_503);
	ck_assert_msg(during >= CLIENTS / 2, "%s: only %zu requests fell into the outage", what,
	              during);
	ck_assert_msg(during_503 == during, "%s: %zu of %zu answers during the outage were not 503 "
	              "with Retry-After", what, during - during_503, during);
	ck_assert_msg(ready_during >= 2, "%s: only %zu /ready probes during the outage", what,
	              ready_during);
	ck_assert_msg(ready_503 == ready_during, "%s: /ready answered %zu of %zu probes during the "
	              "outage with something else than 503", what, ready_during - ready_503,
	              ready_during);

	ids = fault_tickets(&load.log, &n_ids);
	rows = fault_wait_rows(ids, n_ids, READABLE_MS);
	ck_assert_msg(rows == (long)n_ids, "%s: %ld of %zu tickets answered 200 are rows", what, rows,
	              n_ids);
	readable = fault_count_readable(ids, n_ids);
	ck_assert_msg(readable == n_ids, "%s: %zu of %zu tickets answered 200 are readable", what,
	              readable, n_ids);
	printf("  %s: all %zu tickets answered 200 are rows and readable\n", what, n_ids);
	free(ids);
	{
		char (*tried)[UID_TEXT_SIZE] = calloc(n_503 + 1, UID_TEXT_SIZE);
		size_t n_tried = 0;
		ck_assert_ptr_nonnull(tried);
		for (size_t i = 0; i < load.log.n; i++) {
			if (load.log.a[i].status == 503)
				memcpy(tried[n_tried++], load.log.a[i].id, UID_TEXT_SIZE);
		}
		printf("  %s: %zu answers were 503, each naming the id tried; %zu of those ids are rows "
		       "(stored after the request gave up; allowed)\n",
		       what, n_503, fault_count_readable(tried, n_tried));
		free(tried);
	}
	fault_log_free(&load.log);
	fault_log_free(&ready.log);
}

START_TEST(broker_frozen)
{
	long paused, resumed;

	start_with_load();
	fault_broker_pause(true);
	paused = clock_mono_ms();
	proc_sleep_ms(OUTAGE_MS);
	resumed = clock_mono_ms();
	fault_broker_pause(false);
	check_outage("broker frozen", paused, resumed, await_recovery(resumed));
}
END_TEST

START_TEST(broker_restarted)
{
	long down, starting;

	start_with_load();
	ck_assert_msg(fault_script("kafka.sh", "stop") == 0, "scripts/kafka.sh stop failed");
	down = clock_mono_ms();
	proc_sleep_ms(OUTAGE_MS);
	starting = clock_mono_ms();
	ck_assert_msg(fault_script("kafka.sh", "start") == 0, "scripts/kafka.sh start failed");
	printf("  broker restarted: scripts/kafka.sh start took %.1f s\n",
	       fault_secs(clock_mono_ms() - starting));
	check_outage("broker stopped", down, starting, await_recovery(starting));
}
END_TEST

Suite *make_broker_suite(void)
{
	Suite *s = suite_create("broker");
	TCase *tc = tcase_create("unavailable");

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, broker_frozen);
	tcase_add_test(tc, broker_restarted);
	suite_add_tcase(s, tc);
	return s;
}
