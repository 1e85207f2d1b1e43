/* metrics: Prometheus counters, gauges and histograms. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds in seconds of the histogram buckets (+Inf is implicit). */
static const double bucket_le[METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
const double metrics_size_buckets[METRICS_BUCKETS] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};

static struct metrics_series *head, **tail = &head;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

void metrics_register(struct metrics_series *s)
{
	struct metrics_series **at;

	pthread_mutex_lock(&registry_lock);
	at = tail;
	for (struct metrics_series **p = &head; *p; p = &(*p)->next) {
		if (*p == s)
			goto done;
		/* A family split in two would render its HELP and TYPE twice,
		 * which a Prometheus scrape refuses. */
		if (strcmp((*p)->name, s->name) == 0)
			at = &(*p)->next;
	}
	s->next = *at;
	*at = s;
	if (s->next == NULL)
		tail = &s->next;
done:
	pthread_mutex_unlock(&registry_lock);
}

static void (*collectors[METRICS_COLLECTORS_MAX])(void);
static int n_collectors;

void metrics_add_collector(void (*collect)(void))
{
	pthread_mutex_lock(&registry_lock);
	bool known = false;
	for (int i = 0; i < n_collectors; i++)
		known |= collectors[i] == collect;
	if (!known && n_collectors < METRICS_COLLECTORS_MAX)
		collectors[n_collectors++] = collect;
	pthread_mutex_unlock(&registry_lock);
}

void metrics_observe(struct metrics_series *s, double value)
{
	const double *le = s->le ? s->le : bucket_le;

	for (int i = 0; i < METRICS_BUCKETS; i++) {
		if (value <= le[i]) {
			atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
			break;
		}
	}
	atomic_fetch_add_explicit(&s->sum_us, (uint64_t)(value * 1e6 + 0.5), memory_order_relaxed);
	atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

/* HTTP requests by route and status: series are created on first use and
 * never freed, so a fixed table with a lock on insertion only. */
#define HTTP_SERIES_MAX 128
static struct http_series {
	char route[48];
	char labels[96];
	int status;
	struct metrics_series count, duration;
} http_series[HTTP_SERIES_MAX];
static _Atomic int http_series_n;
static pthread_mutex_t http_series_lock = PTHREAD_MUTEX_INITIALIZER;

static struct http_series *http_series_find(const char *route, int status, int n)
{
	for (int i = 0; i < n; i++) {
		if (http_series[i].status == status && strcmp(http_series[i].route, route) == 0)
			return &http_series[i];
	}
	return NULL;
}

void metrics_http_request(const char *route, int status, double seconds)
{
	struct http_series *hs = http_series_find(route, status, atomic_load(&http_series_n));

	if (hs == NULL) {
		pthread_mutex_lock(&http_series_lock);
		int n = atomic_load(&http_series_n);
		hs = http_series_find(route, status, n);
		if (hs == NULL && n < HTTP_SERIES_MAX) {
			hs = &http_series[n];
			snprintf(hs->route, sizeof(hs->route), "%s", route);
			snprintf(hs->labels, sizeof(hs->labels), "route=\"%s\",status=\"%d\"",
			         route, status);
			hs->status = status;
			hs->count = (struct metrics_series)METRICS_COUNTER_INIT(
			    "http_requests_total", "HTTP requests answered, by route and status.",
			    hs->labels);
			hs->duration = (struct metrics_series)METRICS_HISTOGRAM_INIT(
			    "http_request_duration_seconds", "Time to answer an HTTP request.",
			    hs->labels);
			atomic_store(&http_series_n, n + 1);
		}
		pthread_mutex_unlock(&http_series_lock);
		if (hs == NULL)
			return;
	}
	metrics_add(&hs->count, 1);
	metrics_observe(&hs->duration, seconds);
}

struct out {
	char *buf;
	size_t len, cap;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *bigger = realloc(o->buf, o->cap * 2 + (size_t)n);
		if (bigger == NULL)
			return;
		o->buf = bigger;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static void render_series(struct out *o, const struct metrics_series *s,
                          const char *prev_name)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	const char *sep = *s->labels ? "," : "";

	if (prev_name == NULL || strcmp(prev_name, s->name) != 0)
		out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name,
		           types[s->kind]);
	if (s->real) {
		out_printf(o, "%s%s%s%s %.9g\n", s->name, *s->labels ? "{" : "", s->labels,
		           *s->labels ? "}" : "", metrics_get_real(s));
		return;
	}
	if (s->kind != METRICS_HISTOGRAM) {
		out_printf(o, "%s%s%s%s %lld\n", s->name, *s->labels ? "{" : "", s->labels,
		           *s->labels ? "}" : "", (long long)atomic_load(&s->value));
		return;
	}
	const double *le = s->le ? s->le : bucket_le;
	uint64_t cum = 0;
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += atomic_load(&s->buckets[i]);
		out_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name, s->labels, sep,
		           le[i], (unsigned long long)cum);
	}
	long long count = (long long)atomic_load(&s->value);
	out_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %lld\n", s->name, s->labels, sep, count);
	out_printf(o, "%s_sum%s%s%s %.6f\n", s->name, *s->labels ? "{" : "", s->labels,
	           *s->labels ? "}" : "", (double)atomic_load(&s->sum_us) / 1e6);
	out_printf(o, "%s_count%s%s%s %lld\n", s->name, *s->labels ? "{" : "", s->labels,
	           *s->labels ? "}" : "", count);
}

char *metrics_render(size_t *len)
{
	struct out o = {.buf = malloc(8192), .cap = 8192};
	const char *prev = NULL;
	int n = atomic_load(&http_series_n);

	void (*collect[METRICS_COLLECTORS_MAX])(void);
	int n_collect;

	pthread_mutex_lock(&registry_lock);
	n_collect = n_collectors;
	memcpy(collect, collectors, sizeof(collect));
	pthread_mutex_unlock(&registry_lock);
	/* Outside the lock: a collector may register the series it sets. */
	for (int i = 0; i < n_collect; i++)
		collect[i]();
	if (o.buf == NULL)
		return NULL;
	o.buf[0] = '\0';
	/* The series of a family must be adjacent: counts first, then times. */
	for (int i = 0; i < n; i++)
		render_series(&o, &http_series[i].count, i ? "http_requests_total" : NULL);
	for (int i = 0; i < n; i++)
		render_series(&o, &http_series[i].duration,
		              i ? "http_request_duration_seconds" : NULL);
	pthread_mutex_lock(&registry_lock);
	for (const struct metrics_series *s = head; s; s = s->next) {
		render_series(&o, s, prev);
		prev = s->name;
	}
	pthread_mutex_unlock(&registry_lock);
	*len = o.len;
	return o.buf;
}
