/* test_lookup: lookup_get's batching and deadlines (query-service/lookup.c),
 * with a fake batch reader in place of PostgreSQL (lookup_set_reader): it
 * answers from the id itself, records the batches it was given, and can be
 * held at a gate to play a statement that hangs. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lookup.h"
#include "suites.h"

#define CALLS_MAX 16

/* The fake reader's state, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int calls;                      /* batches read so far */
static int sizes[CALLS_MAX];           /* n of each */
static bool hold[CALLS_MAX];           /* call i waits until released */
static bool returned[CALLS_MAX];       /* call i has returned */
static bool fail;                      /* every read fails */
/* The reader cannot tell whether a missing id is missing (DB_READ_URL
 * missed it and DB_URL did not answer): such ids are unavailable. */
static bool unconfirmed;

/* Found when the id's last hex digit is even; its event time says which
 * id it belongs to. */
static bool fake_found(const char *id)
{
	return strchr("02468ace", id[35]) != NULL;
}

static int64_t fake_sec(const char *id)
{
	return strtoll(id + 24, NULL, 16);
}

static int fake_read(const char (*ids)[UID_TEXT_SIZE], int n, const struct timespec *deadline,
                     enum lookup_result *results, struct lookup_record *recs, char *errstr,
                     size_t errstr_size)
{
	int me;

	(void)deadline; /* a hanging statement does not care */
	pthread_mutex_lock(&mu);
	me = calls++;
	if (me < CALLS_MAX) {
		sizes[me] = n;
		pthread_cond_broadcast(&cv);
		while (hold[me])
			pthread_cond_wait(&cv, &mu);
	}
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n; i++) {
		results[i] = fake_found(ids[i]) ? LOOKUP_FOUND
		             : unconfirmed        ? LOOKUP_UNAVAILABLE
		                                  : LOOKUP_MISSING;
		recs[i] = (struct lookup_record){.event_time = {.sec = fake_sec(ids[i])}};
	}
	pthread_mutex_lock(&mu);
	if (me < CALLS_MAX)
		returned[me] = true;
	pthread_mutex_unlock(&mu);
	if (unconfirmed)
		snprintf(errstr, errstr_size, "fake: not confirmed");
	if (fail) {
		snprintf(errstr, errstr_size, "fake failure");
		return -1;
	}
	return 0;
}

static bool has_returned(int call)
{
	pthread_mutex_lock(&mu);
	bool r = returned[call];
	pthread_mutex_unlock(&mu);
	return r;
}

static void release(int call)
{
	pthread_mutex_lock(&mu);
	hold[call] = false;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Waits (with no time limit: Check's timeout is the limit) until the
 * fake reader has been called `n` times. */
static void wait_calls(int n)
{
	pthread_mutex_lock(&mu);
	while (calls < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* Waits until `n` requests are queued behind the statements running. */
static void wait_queued(int n)
{
	while (lookup_queued() < n)
		usleep(1000);
}

static void setup(void)
{
	pthread_mutex_lock(&mu);
	calls = 0;
	memset(sizes, 0, sizeof(sizes));
	memset(hold, 0, sizeof(hold));
	memset(returned, 0, sizeof(returned));
	fail = false;
	unconfirmed = false;
	pthread_mutex_unlock(&mu);
	lookup_set_reader(fake_read);
}

static void teardown(void)
{
	lookup_set_reader(NULL);
}

/* One request in a thread of its own. */
struct req {
	char id[UID_TEXT_SIZE];
	enum lookup_result result;
	struct lookup_record rec;
	char err[256];
	pthread_t tid;
};

static void *req_main(void *arg)
{
	struct req *r = arg;

	r->result = lookup_get(r->id, &r->rec, r->err, sizeof(r->err));
	return NULL;
}

static void req_start(struct req *r, int i)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "00000000-0000-4000-8000-%012x", i);
	ck_assert_int_eq(pthread_create(&r->tid, NULL, req_main, r), 0);
}

/* r got the answer the fake reader gives for its own id. */
static void check_own_answer(const struct req *r)
{
	if (fake_found(r->id)) {
		ck_assert_msg(r->result == LOOKUP_FOUND, "%s: %d (%s)", r->id, r->result, r->err);
		ck_assert_int_eq(r->rec.event_time.sec, fake_sec(r->id));
	} else {
		ck_assert_msg(r->result == LOOKUP_MISSING, "%s: %d (%s)", r->id, r->result, r->err);
	}
}

START_TEST(alone_reads_alone_at_once)
{
	struct req r[2];

	lookup_setup(4, 10000, 0);
	for (int i = 0; i < 2; i++) {
		req_start(&r[i], i + 1); /* ...001 missing, ...002 found */
		pthread_join(r[i].tid, NULL);
		check_own_answer(&r[i]);
	}
	ck_assert_int_eq(calls, 2);
	ck_assert_int_eq(sizes[0], 1);
	ck_assert_int_eq(sizes[1], 1);
}
END_TEST

START_TEST(waiting_requests_are_read_together_each_getting_its_own_answer)
{
	enum { N = 9 };
	struct req first, r[N];

	lookup_setup(1, 30000, 0);
	hold[0] = true;
	req_start(&first, 100);
	wait_calls(1); /* the one statement there may be runs, and hangs */
	for (int i = 0; i < N; i++)
		req_start(&r[i], i % 4 + 1); /* 1..4 again and again: repeated ids */
	wait_queued(N);
	release(0);
	pthread_join(first.tid, NULL);
	for (int i = 0; i < N; i++) {
		pthread_join(r[i].tid, NULL);
		check_own_answer(&r[i]);
	}
	check_own_answer(&first);
	ck_assert_int_eq(calls, 2);
	ck_assert_int_eq(sizes[1], N);
}
END_TEST

/* A batch whose reader could not confirm some ids missing: those are
 * unavailable with its reason, the others answered all the same. */
START_TEST(unconfirmed_ids_are_unavailable_and_the_rest_answered)
{
	enum { N = 4 };
	struct req first, r[N];

	lookup_setup(1, 30000, 0);
	unconfirmed = true;
	hold[0] = true;
	req_start(&first, 2);
	wait_calls(1);
	for (int i = 0; i < N; i++)
		req_start(&r[i], i + 1); /* 1 and 3 missing, 2 and 4 found */
	wait_queued(N);
	release(0);
	pthread_join(first.tid, NULL);
	check_own_answer(&first);
	for (int i = 0; i < N; i++) {
		pthread_join(r[i].tid, NULL);
		if (fake_found(r[i].id)) {
			check_own_answer(&r[i]);
		} else {
			ck_assert_msg(r[i].result == LOOKUP_UNAVAILABLE, "%s: %d", r[i].id, r[i].result);
			ck_assert_str_eq(r[i].err, "fake: not confirmed");
		}
	}
	ck_assert_int_eq(sizes[1], N);
}
END_TEST

static int calls_now(void)
{
	pthread_mutex_lock(&mu);
	int n = calls;
	pthread_mutex_unlock(&mu);
	return n;
}

/* DB_LOOKUP_STATEMENTS (2 by default): with both statements running, later
 * requests start no third one; they queue, and the first statement to end
 * hands them all to one. (A second starts at once here: spread 0.) */
START_TEST(no_more_statements_than_allowed_the_rest_read_together)
{
	enum { N = 6 };
	struct req a, b, r[N];

	lookup_setup(2, 30000, 0);
	hold[0] = hold[1] = true;
	req_start(&a, 2);
	wait_calls(1);
	req_start(&b, 4);
	wait_calls(2); /* both statements run, and hang */
	for (int i = 0; i < N; i++)
		req_start(&r[i], i + 10);
	while (lookup_queued() < N && calls_now() == 2)
		usleep(1000);
	ck_assert_int_eq(calls_now(), 2);
	ck_assert_int_eq(lookup_queued(), N);
	release(0);
	wait_calls(3);
	ck_assert_int_eq(sizes[2], N);
	for (int i = 0; i < N; i++) {
		pthread_join(r[i].tid, NULL);
		check_own_answer(&r[i]);
	}
	ck_assert(!has_returned(1)); /* they did not wait for the other one */
	release(1);
	pthread_join(a.tid, NULL);
	pthread_join(b.tid, NULL);
	check_own_answer(&a);
	check_own_answer(&b);
	ck_assert_int_eq(calls_now(), 3);
}
END_TEST

/* While a statement runs, and has run less than the spread, requests
 * queue for the next statement rather than start another beside it, even
 * with statements to spare: the one that ends hands them all to one. */
START_TEST(no_second_statement_while_the_first_answers_in_time)
{
	enum { N = 5 };
	struct req first, r[N];

	lookup_setup(4, 30000, 60000);
	hold[0] = true;
	req_start(&first, 2);
	wait_calls(1);
	for (int i = 0; i < N; i++)
		req_start(&r[i], i + 10);
	while (lookup_queued() < N && calls_now() == 1)
		usleep(1000);
	usleep(100 * 1000); /* room for a wrongly started second statement */
	ck_assert_int_eq(calls_now(), 1);
	ck_assert_int_eq(lookup_queued(), N);
	release(0);
	for (int i = 0; i < N; i++) {
		pthread_join(r[i].tid, NULL);
		check_own_answer(&r[i]);
	}
	pthread_join(first.tid, NULL);
	check_own_answer(&first);
	ck_assert_int_eq(calls_now(), 2);
	ck_assert_int_eq(sizes[1], N);
}
END_TEST

/* Joins the n requests of r, each answered while the first statement
 * (call 0) still hangs, then lets that one end and joins first. */
static void join_beside_the_held_first(struct req *r, int n, struct req *first)
{
	for (int i = 0; i < n; i++) {
		pthread_join(r[i].tid, NULL);
		check_own_answer(&r[i]);
	}
	ck_assert(!has_returned(0));
	release(0);
	pthread_join(first->tid, NULL);
	check_own_answer(first);
}

/* A statement that has run the spread without an answer (a slow disk, a
 * stall) lets another start beside it, no sooner, for what queued since. */
START_TEST(slow_statement_lets_another_start_after_the_spread)
{
	enum { SPREAD_MS = 200, N = 3 };
	struct req first, r[N];
	struct timespec t0, t1;

	lookup_setup(2, 30000, SPREAD_MS);
	hold[0] = true;
	clock_gettime(CLOCK_MONOTONIC, &t0); /* before the first started */
	req_start(&first, 2);
	wait_calls(1);
	for (int i = 0; i < N; i++)
		req_start(&r[i], i + 10);
	wait_calls(2);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert(!has_returned(0)); /* beside the first, which still hangs */
	ck_assert_int_eq(sizes[1], N);
	ck_assert_msg((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec) >=
	                  SPREAD_MS * 1000000LL,
	              "the second statement started before the spread");
	join_beside_the_held_first(r, N, &first);
}
END_TEST

/* A full batch waiting starts another statement at once, spread or not:
 * one statement at a time would cap the reads at a batch a round trip. */
START_TEST(full_batch_waiting_starts_another_statement)
{
	enum { N = LOOKUP_BATCH_MAX };
	static struct req r[N];
	struct req first;

	lookup_setup(2, 30000, 60000);
	hold[0] = true;
	req_start(&first, 2);
	wait_calls(1);
	for (int i = 0; i < N; i++)
		req_start(&r[i], i + 10);
	wait_calls(2);
	ck_assert_int_eq(sizes[1], N);
	join_beside_the_held_first(r, N, &first);
}
END_TEST

START_TEST(queued_request_gives_up_when_every_statement_is_busy)
{
	struct req first, late;

	lookup_setup(1, 200, 0);
	hold[0] = true;
	req_start(&first, 2);
	wait_calls(1);
	req_start(&late, 4);
	pthread_join(late.tid, NULL); /* returns while the statement still hangs */
	ck_assert_int_eq(late.result, LOOKUP_UNAVAILABLE);
	ck_assert_msg(strstr(late.err, "busy") != NULL, "%s", late.err);
	ck_assert(!has_returned(0));
	release(0);
	pthread_join(first.tid, NULL);
	check_own_answer(&first);
	ck_assert_int_eq(calls, 1);
}
END_TEST

/* The case a hung database makes: readers taken into a batch whose
 * statement does not come back must not wait for it past their deadline. */
START_TEST(taken_request_gives_up_when_its_leader_hangs)
{
	struct req blocker, leader, taken;

	lookup_setup(1, 3000, 0);
	hold[0] = hold[1] = true;
	req_start(&blocker, 6);
	wait_calls(1);
	req_start(&leader, 2);
	wait_queued(1);
	req_start(&taken, 4);
	wait_queued(2);
	release(0); /* leader takes itself and taken, and hangs */
	wait_calls(2);
	ck_assert_int_eq(sizes[1], 2);
	pthread_join(taken.tid, NULL); /* returns while the statement still hangs */
	ck_assert(!has_returned(1));
	ck_assert_int_eq(taken.result, LOOKUP_UNAVAILABLE);
	ck_assert_msg(strstr(taken.err, "no answer") != NULL, "%s", taken.err);

	/* The statement comes back at last: the leader gets its answer, and
	 * the reader that left is not written to. */
	release(1);
	pthread_join(leader.tid, NULL);
	pthread_join(blocker.tid, NULL);
	check_own_answer(&leader);
	check_own_answer(&blocker);
}
END_TEST

START_TEST(failed_read_answers_every_request_of_the_batch_with_its_error)
{
	enum { N = 4 };
	struct req first, r[N];

	lookup_setup(1, 30000, 0);
	hold[0] = true;
	fail = true;
	req_start(&first, 2);
	wait_calls(1);
	for (int i = 0; i < N; i++)
		req_start(&r[i], i + 10);
	wait_queued(N);
	release(0);
	pthread_join(first.tid, NULL);
	for (int i = 0; i < N; i++) {
		pthread_join(r[i].tid, NULL);
		ck_assert_int_eq(r[i].result, LOOKUP_UNAVAILABLE);
		ck_assert_str_eq(r[i].err, "fake failure");
	}
	ck_assert_int_eq(first.result, LOOKUP_UNAVAILABLE);
	ck_assert_int_eq(sizes[1], N);
}
END_TEST

Suite *make_lookup_suite(void)
{
	Suite *s = suite_create("lookup");
	TCase *tc = tcase_create("batching");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, alone_reads_alone_at_once);
	tcase_add_test(tc, waiting_requests_are_read_together_each_getting_its_own_answer);
	tcase_add_test(tc, failed_read_answers_every_request_of_the_batch_with_its_error);
	tcase_add_test(tc, unconfirmed_ids_are_unavailable_and_the_rest_answered);
	tcase_add_test(tc, no_more_statements_than_allowed_the_rest_read_together);
	tcase_add_test(tc, no_second_statement_while_the_first_answers_in_time);
	tcase_add_test(tc, slow_statement_lets_another_start_after_the_spread);
	tcase_add_test(tc, full_batch_waiting_starts_another_statement);
	suite_add_tcase(s, tc);

	tc = tcase_create("deadline");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, queued_request_gives_up_when_every_statement_is_busy);
	tcase_add_test(tc, taken_request_gives_up_when_its_leader_hangs);
	suite_add_tcase(s, tc);
	return s;
}
