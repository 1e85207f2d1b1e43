/* clock: monotonic time, deadlines and timed waits (see clock.h). */
#include "clock.h"

double clock_mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

long clock_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t clock_mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

struct timespec clock_deadline(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += ms % 1000 * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

struct timespec clock_deadline_s(double seconds)
{
	return clock_deadline(seconds > 0 ? (long)(seconds * 1000) + 1 : 0);
}

int clock_ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ns, ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (deadline->tv_sec - now.tv_sec > 1000000) /* past the clamp; no overflow below */
		return 1000000000;
	ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000 + (deadline->tv_nsec - now.tv_nsec);
	/* Rounded up: a poll() for the truncated count ended the wait up to
	 * 1 ms before the deadline (a unit test saw a 600 ms deadline given
	 * up at 599 ms). */
	ms = ns <= 0 ? 0 : (ns + 999999) / 1000000;
	return ms > 1000000000 ? 1000000000 : (int)ms;
}

int clock_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	return a->tv_nsec < b->tv_nsec ? -1 : a->tv_nsec > b->tv_nsec;
}

bool clock_passed(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return clock_cmp(&now, deadline) >= 0;
}

int clock_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int rc = pthread_condattr_init(&attr);

	if (rc != 0)
		return rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}
