/* metrics: Prometheus counters, gauges and histograms. Series are declared
 * statically, registered once at start-up, updated lock-free, and rendered
 * in the text exposition format (which http.c serves as GET /metrics). */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum metrics_kind { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

#define METRICS_BUCKETS 12

struct metrics_series {
	const char *name;   /* family name, e.g. "http_requests_total" */
	const char *help;
	const char *labels; /* "" or e.g. "route=\"/health\",status=\"200\"" */
	enum metrics_kind kind;
	const double *le; /* histogram bucket bounds (METRICS_BUCKETS); NULL: seconds */
	_Atomic int64_t value;                 /* counter/gauge; histogram count */
	_Atomic uint64_t sum_us;               /* histogram sum, in millionths */
	_Atomic uint64_t buckets[METRICS_BUCKETS];
	struct metrics_series *next;
};

#define METRICS_COUNTER_INIT(n, h, l) {.name = (n), .help = (h), .labels = (l), .kind = METRICS_COUNTER}
#define METRICS_GAUGE_INIT(n, h, l) {.name = (n), .help = (h), .labels = (l), .kind = METRICS_GAUGE}
#define METRICS_HISTOGRAM_INIT(n, h, l) {.name = (n), .help = (h), .labels = (l), .kind = METRICS_HISTOGRAM}
/* A histogram of counts (batch sizes and the like) rather than seconds. */
#define METRICS_SIZE_HISTOGRAM_INIT(n, h, l) \
	{.name = (n), .help = (h), .labels = (l), .kind = METRICS_HISTOGRAM, .le = metrics_size_buckets}

extern const double metrics_size_buckets[METRICS_BUCKETS];

/* Adds a series to the registry (at any time; it is never removed). Series
 * of one family must be registered next to each other. */
void metrics_register(struct metrics_series *s);

static inline void metrics_add(struct metrics_series *s, int64_t n)
{
	atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

static inline void metrics_set(struct metrics_series *s, int64_t v)
{
	atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

/* Records one observation (seconds, or a count for a size histogram). */
void metrics_observe(struct metrics_series *s, double value);

/* Counts one HTTP request: route is one of the service's routes or "other". */
void metrics_http_request(const char *route, int status, double seconds);

/* Renders every series into a new string (the caller frees it). */
char *metrics_render(size_t *len);

#endif
