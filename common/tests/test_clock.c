/* test_clock: monotonic time, deadlines and timed waits (common/clock.c),
 * checked against clock_gettime(CLOCK_MONOTONIC) read beside them. */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "clock.h"
#include "suites.h"

static long long mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

START_TEST(deadline_is_ms_from_now_and_normalized)
{
	static const long ms[] = {0, 1, 999, 1000, 1500, 2999, 60000};

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		long long b = mono_ns() + ms[i] * 1000000LL;
		struct timespec d = clock_deadline(ms[i]);
		long long a = mono_ns() + ms[i] * 1000000LL;
		long long v = d.tv_sec * 1000000000LL + d.tv_nsec;

		ck_assert_int_ge(d.tv_nsec, 0);
		ck_assert_int_lt(d.tv_nsec, 1000000000);
		ck_assert_msg(b <= v && v <= a, "%ld ms: %lld not in [%lld, %lld]", ms[i], v, b, a);
	}
}
END_TEST

START_TEST(now_is_monotonic)
{
	double a = clock_mono_s(), b = clock_mono_s();
	long ams = clock_mono_ms(), bms = clock_mono_ms();

	ck_assert(a > 0);
	ck_assert(b >= a);
	ck_assert(bms >= ams);
	ck_assert(ams / 1000 - (long)a <= 1);
}
END_TEST

/* The same clock as clock_mono_ms: read between two of its readings, it
 * falls between them. */
START_TEST(mono_ns_is_the_same_clock_in_nanoseconds)
{
	long before = clock_mono_ms();
	int64_t ns = clock_mono_ns(), again = clock_mono_ns();
	long after = clock_mono_ms();

	ck_assert_int_ge(again, ns);
	ck_assert_int_ge(ns / 1000000, before);
	ck_assert_int_le(ns / 1000000, after);
}
END_TEST

START_TEST(deadline_in_seconds_rounds_up_to_a_millisecond)
{
	long long b = mono_ns();
	struct timespec d = clock_deadline_s(0.0015), zero = clock_deadline_s(-3);
	long long v = d.tv_sec * 1000000000LL + d.tv_nsec;

	/* 1.5 ms is waited as 2 ms: never less than asked */
	ck_assert_msg(v >= b + 2000000LL, "%lld < %lld", v, b + 2000000LL);
	ck_assert(clock_passed(&zero));
}
END_TEST

START_TEST(ms_left_is_clamped_and_passed_agrees)
{
	struct timespec past = clock_deadline(0), soon = clock_deadline(5000),
	                far = {.tv_sec = past.tv_sec + 2000000};

	ck_assert_int_eq(clock_ms_left(&past), 0);
	ck_assert(clock_passed(&past));
	ck_assert_int_le(clock_ms_left(&soon), 5000);
	ck_assert_int_ge(clock_ms_left(&soon), 4000);
	ck_assert(!clock_passed(&soon));
	ck_assert_int_eq(clock_ms_left(&far), 1000000000);
	ck_assert_int_lt(clock_cmp(&past, &soon), 0);
	ck_assert_int_gt(clock_cmp(&soon, &past), 0);
	ck_assert_int_eq(clock_cmp(&soon, &soon), 0);
}
END_TEST

/* A timed wait on a clock_cond_init condition ends at a clock_deadline:
 * not at once (a monotonic deadline read as wall time lies in 1970) and
 * not much later. */
START_TEST(cond_waits_until_a_monotonic_deadline)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	struct timespec until;
	long long started;
	int rc = 0;

	ck_assert_int_eq(clock_cond_init(&cv), 0);
	pthread_mutex_lock(&mu);
	started = mono_ns();
	until = clock_deadline(100);
	while (rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&cv, &mu, &until);
	pthread_mutex_unlock(&mu);
	ck_assert(clock_passed(&until));
	ck_assert_msg(mono_ns() - started < 2000000000LL, "waited %lld ns",
	              mono_ns() - started);
	pthread_cond_destroy(&cv);
}
END_TEST

Suite *make_clock_suite(void)
{
	Suite *s = suite_create("clock");
	TCase *tc = tcase_create("clock");

	tcase_add_test(tc, deadline_is_ms_from_now_and_normalized);
	tcase_add_test(tc, now_is_monotonic);
	tcase_add_test(tc, mono_ns_is_the_same_clock_in_nanoseconds);
	tcase_add_test(tc, deadline_in_seconds_rounds_up_to_a_millisecond);
	tcase_add_test(tc, ms_left_is_clamped_and_passed_agrees);
	tcase_add_test(tc, cond_waits_until_a_monotonic_deadline);
	suite_add_tcase(s, tc);
	return s;
}
