/* metrics: Prometheus counters, gauges and histograms. Series are declared
 * statically, registered once at start-up, updated lock-free, and rendered
 * in the text exposition format (which http.c serves as GET /metrics). */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metrics_kind { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

#define METRICS_BUCKETS 12

struct metrics_series {
	const char *name;   /* family name, e.g. "http_requests_total" */
	const char *help;
	const char *labels; /* "" or e.g. "route=\"/health\",status=\"200\"" */
	enum metrics_kind kind;
	bool real;        /* a gauge whose value is a double (metrics_set_real) */
	const double *le; /* histogram bucket bounds (METRICS_BUCKETS); NULL: seconds */
	_Atomic int64_t value;                 /* counter/gauge; histogram count */
	_Atomic uint64_t sum_us;               /* histogram sum, in millionths */
	_Atomic uint64_t buckets[METRICS_BUCKETS];
	struct metrics_series *next;
};

#define METRICS_COUNTER_INIT(n, h, l) {.name = (n), .help = (h), .labels = (l), .kind = METRICS_COUNTER}
#define METRICS_GAUGE_INIT(n, h, l) {.name = (n), .help = (h), .labels = (l), .kind = METRICS_GAUGE}
/* A gauge with a fractional value (seconds, a rate): set with metrics_set_real. */
#define METRICS_REAL_GAUGE_INIT(n, h, l) {.name = (n), .help = (h), .labels = (l), .kind = METRICS_GAUGE, .real = true}
#define METRICS_HISTOGRAM_INIT(n, h, l) {.name = (n), .help = (h), .labels = (l), .kind = METRICS_HISTOGRAM}
/* A histogram of counts (batch sizes and the like) rather than seconds. */
#define METRICS_SIZE_HISTOGRAM_INIT(n, h, l) \
	{.name = (n), .help = (h), .labels = (l), .kind = METRICS_HISTOGRAM, .le = metrics_size_buckets}

extern const double metrics_size_buckets[METRICS_BUCKETS];

/* Adds a series to the registry (at any time; it is never removed), after
 * the last series of its family if there is one, so that a family whose
 * series appear one by one (a partition at a time) stays together. A series
 * already registered is left where it is. */
void metrics_register(struct metrics_series *s);

/* Adds a function that metrics_render calls first, in the scraping thread,
 * to bring gauges read at scrape time up to date (at most
 * METRICS_COLLECTORS_MAX; adding the same function again does nothing).
 * It must return in bounded time: a scrape waits for it. */
#define METRICS_COLLECTORS_MAX 8
void metrics_add_collector(void (*collect)(void));

static inline void metrics_add(struct metrics_series *s, int64_t n)
{
	atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

static inline void metrics_set(struct metrics_series *s, int64_t v)
{
	atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

/* Sets a gauge made by METRICS_REAL_GAUGE_INIT. */
static inline void metrics_set_real(struct metrics_series *s, double v)
{
	int64_t bits;

	_Static_assert(sizeof(bits) == sizeof(v), "a double is 64 bits");
	__builtin_memcpy(&bits, &v, sizeof(bits));
	atomic_store_explicit(&s->value, bits, memory_order_relaxed);
}

/* The value of a gauge made by METRICS_REAL_GAUGE_INIT. */
static inline double metrics_get_real(const struct metrics_series *s)
{
	int64_t bits = atomic_load_explicit(&s->value, memory_order_relaxed);
	double v;

	__builtin_memcpy(&v, &bits, sizeof(v));
	return v;
}

/* Records one observation (seconds, or a count for a size histogram). */
void metrics_observe(struct metrics_series *s, double value);

/* Counts one HTTP request: route is one of the service's routes or "other". */
void metrics_http_request(const char *route, int status, double seconds);

/* Renders every series into a new string (the caller frees it). */
char *metrics_render(size_t *len);

#endif
