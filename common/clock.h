/* clock: the one clock for durations, deadlines and timed waits. All of it
 * is CLOCK_MONOTONIC, so that a step of the wall clock (NTP, an
 * administrator) neither lengthens nor cuts short a wait. The wall time of
 * an instant (created_at, log lines) is ts_now's, never a deadline's. */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Seconds, and milliseconds, on the monotonic clock (from an arbitrary
 * origin: only differences mean anything). */
double clock_mono_s(void);
long clock_mono_ms(void);
/* Nanoseconds, for a span's duration (its start is ts_now's wall time). */
int64_t clock_mono_ns(void);

/* The monotonic clock ms milliseconds from now: a deadline for
 * clock_ms_left, clock_passed and pthread_cond_timedwait on a condition
 * variable made by clock_cond_init. */
struct timespec clock_deadline(long ms);

/* clock_deadline for a duration in seconds, rounded up to the next whole
 * millisecond (a wait that woke a little early would spin until then);
 * a negative duration is 0. */
struct timespec clock_deadline_s(double seconds);

/* Milliseconds from now until deadline, rounded up (a wait for them never
 * ends before it), at least 0 and at most 10^9 (so that poll() can take it). */
int clock_ms_left(const struct timespec *deadline);

/* True once deadline has passed. */
bool clock_passed(const struct timespec *deadline);

/* <0, 0, >0 as a is before, equal to, after b. */
int clock_cmp(const struct timespec *a, const struct timespec *b);

/* Initialises cv so that pthread_cond_timedwait takes a clock_deadline.
 * Every condition variable waited on with a deadline is made by it: one
 * made by PTHREAD_COND_INITIALIZER waits on the wall clock. Returns 0, or
 * the pthread error. Destroy with pthread_cond_destroy. */
int clock_cond_init(pthread_cond_t *cv);

#endif
