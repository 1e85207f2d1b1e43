/* pause: how long the machine itself stopped running us during a measured
 * run. A thread at the top real-time priority (SCHED_FIFO) sleeps TICK_MS
 * at a time and notes how late each wake-up came: no program of ours or of
 * the load generator can hold it back, so a late wake-up is time the
 * virtual machine was not running at all (the host gave its CPU to
 * others) or the kernel would not switch. Steal alone cannot say that: the
 * host reports it late, and in ticks.
 *
 * usage: pause MAX_SECONDS
 * runs until SIGTERM or SIGINT (or MAX_SECONDS, so that a forgotten one
 * stops by itself), then prints one line:
 *   pause_rt=1|0 (0: no real-time priority was granted; the figures then
 *                 include waits for a core behind our own programs)
 *   pause_max_ms= the longest wake-up delay
 *   pauses_10ms=  wake-ups more than 10 ms late */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 2
#define LATE_MS 10.0

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	const struct sched_param top = {.sched_priority = sched_get_priority_max(SCHED_FIFO)};
	const struct timespec tick = {.tv_nsec = TICK_MS * 1000000L};
	struct sigaction sa;
	char *end;
	double max_late = 0;
	long late = 0;

	const double secs = argc == 2 ? strtod(argv[1], &end) : 0;
	if (argc != 2 || *end != '\0' || !(secs > 0)) {
		fprintf(stderr, "usage: pause MAX_SECONDS\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: the sleep ends at once */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	const int rt = sched_setscheduler(0, SCHED_FIFO, &top) == 0;
	if (!rt)
		fprintf(stderr, "pause: no real-time priority (%s): the figures include "
		                "waits for a core\n", strerror(errno));

	const double until = now_ms() + secs * 1000.0;
	while (!stop && now_ms() < until) {
		const double t0 = now_ms();
		if (nanosleep(&tick, NULL) != 0)
			continue; /* a signal: the loop looks at stop */
		const double over = now_ms() - t0 - TICK_MS;
		if (over > max_late)
			max_late = over;
		if (over > LATE_MS)
			late++;
	}
	printf("pause_rt=%d pause_max_ms=%.1f pauses_10ms=%ld\n", rt, max_late, late);
	return 0;
}
