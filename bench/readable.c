/* readable: accept → readable latency. Reads the results of a constant-rate
 * POST attack as they arrive, bench/attack's lines or vegeta's
 * (`vegeta attack | vegeta encode --to json`);
 * for every EVERY-th 200 it GETs the id from query-service until the record
 * is found (every INTERVAL_MS, or a tenth of the time waited so far if that
 * is longer), and measures from the moment the POST's 200 arrived (its
 * start + latency, wall clock) to the end of the first GET that found it.
 *
 * usage: readable QUERY_URL EVERY INTERVAL_MS OUT_FILE
 * prints one line of key=value figures (POST latency, readable latency, counts);
 * OUT_FILE gets a line per record found: its readable latency in ms and when
 * its 200 arrived, in seconds from the first one (for the charts). */
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "ts.h"
#include "uid.h"

#define POLLERS 8
#define GIVE_UP_S 10.0

struct item {
	char id[UID_TEXT_SIZE];
	double done_at; /* when the POST's 200 arrived */
	double next_at; /* when to GET (again) */
};

/* Fresh items are due at once, in arrival order; retries wait in a heap
 * ordered by next_at. */
struct fifo {
	struct item *v;
	size_t head, len, cap;
};

struct heap {
	struct item *v;
	size_t len, cap;
};

static struct fifo fresh;
static struct heap retry;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv; /* clock_cond_init: its waits are monotonic */
static int input_done;
static size_t pending; /* items not yet found or given up */
static const char *query_url;
static double interval_s;

/* results, under mu */
static double *found_ms, *found_at; /* latency; when the 200 arrived */
static size_t found_n, found_cap, found_at_n, found_at_cap;
static long gets, lost, get_errors;

/* Wall time, as a double: the instants compared are vegeta's. */
static double wall(void)
{
	const struct ts_instant t = ts_now();
	return (double)t.sec + (double)t.nsec / 1e9;
}

static void *xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL) {
		fprintf(stderr, "readable: out of memory\n");
		exit(1);
	}
	return p;
}

static void fifo_push(struct fifo *f, const struct item *it)
{
	if (f->len == f->cap) {
		struct item *v;
		size_t i, cap = f->cap ? f->cap * 2 : 1024;

		v = xrealloc(NULL, cap * sizeof(*v));
		for (i = 0; i < f->len; i++)
			v[i] = f->v[(f->head + i) % f->cap];
		free(f->v);
		f->v = v;
		f->head = 0;
		f->cap = cap;
	}
	f->v[(f->head + f->len++) % f->cap] = *it;
}

static struct item *fifo_peek(struct fifo *f)
{
	return f->len ? &f->v[f->head] : NULL;
}

static void fifo_pop(struct fifo *f)
{
	f->head = (f->head + 1) % f->cap;
	f->len--;
}

static void heap_swap(struct heap *h, size_t a, size_t b)
{
	struct item t = h->v[a];
	h->v[a] = h->v[b];
	h->v[b] = t;
}

static void heap_push(struct heap *h, const struct item *it)
{
	size_t i;

	if (h->len == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 1024;
		h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
	}
	h->v[i = h->len++] = *it;
	for (; i > 0 && h->v[(i - 1) / 2].next_at > h->v[i].next_at; i = (i - 1) / 2)
		heap_swap(h, i, (i - 1) / 2);
}

static struct item *heap_peek(struct heap *h)
{
	return h->len ? &h->v[0] : NULL;
}

static void heap_pop(struct heap *h)
{
	size_t i = 0;

	h->v[0] = h->v[--h->len];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->len && h->v[l].next_at < h->v[m].next_at)
			m = l;
		if (r < h->len && h->v[r].next_at < h->v[m].next_at)
			m = r;
		if (m == i)
			break;
		heap_swap(h, i, m);
		i = m;
	}
}

static void push_ms(double **v, size_t *n, size_t *cap, double ms)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = ms;
}

static size_t discard(char *p, size_t size, size_t n, void *data)
{
	(void)p;
	(void)data;
	return size * n;
}

/* Takes the next due item into *out; waits while none is due. 0, or -1 when
 * all is done. Called with mu held. */
static int next_item(struct item *out)
{
	for (;;) {
		struct item *r = heap_peek(&retry);
		double now = wall();

		if (r != NULL && r->next_at <= now) {
			*out = *r;
			heap_pop(&retry);
			return 0;
		}
		if (fresh.len > 0) {
			*out = *fifo_peek(&fresh);
			fifo_pop(&fresh);
			return 0;
		}
		if (input_done && pending == 0)
			return -1;
		if (r != NULL) {
			/* next_at is wall time (vegeta's); the wait is monotonic. */
			struct timespec until = clock_deadline_s(r->next_at - now);
			pthread_cond_timedwait(&cv, &mu, &until);
		} else {
			pthread_cond_wait(&cv, &mu);
		}
	}
}

static void *poller(void *arg)
{
	CURL *c = curl_easy_init();
	char url[1024];
	struct item it;

	(void)arg;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	pthread_mutex_lock(&mu);
	while (next_item(&it) == 0) {
		long code = 0;
		double end;

		pthread_mutex_unlock(&mu);
		snprintf(url, sizeof(url), "%s/api/v1/timestamp/%s", query_url, it.id);
		curl_easy_setopt(c, CURLOPT_URL, url);
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		end = wall();
		pthread_mutex_lock(&mu);
		gets++;
		if (code == 200) {
			push_ms(&found_ms, &found_n, &found_cap, (end - it.done_at) * 1e3);
			push_ms(&found_at, &found_at_n, &found_at_cap, it.done_at);
			pending--;
		} else if (code == 404 && end - it.done_at < GIVE_UP_S) {
			/* Every INTERVAL at first; a record that is late is asked
			 * for every tenth of its age, so a slow consumer is not
			 * made slower by ever more GETs (the figure errs high by
			 * at most that tenth). */
			double age = end - it.done_at;
			it.next_at = end + (age / 10 > interval_s ? age / 10 : interval_s);
			heap_push(&retry, &it);
		} else {
			if (code != 404)
				get_errors++;
			lost++;
			pending--;
		}
		/* A retry is this poller's to wait for (it loops); the others
		 * only need waking at the end. Waking all of them for every GET
		 * cost the machine more than the GETs did. */
		if (input_done && pending == 0)
			pthread_cond_broadcast(&cv);
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	curl_easy_cleanup(c);
	return NULL;
}

static int b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z') return ch - 'A';
	if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9') return ch - '0' + 52;
	if (ch == '+') return 62;
	if (ch == '/') return 63;
	return -1;
}

/* Decodes standard base64 (padding ignored) into out; returns the length. */
static size_t b64decode(const char *s, char *out, size_t size)
{
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0, v;

	for (; *s && *s != '='; s++) {
		if ((v = b64val((unsigned char)*s)) < 0)
			break;
		acc = (acc << 6) | (unsigned)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			if (n + 1 < size)
				out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return n;
}

/* The id in a 200's body {"id":"…"}, into id. 0 or -1. */
static int body_id(const char *b64, char *id)
{
	char body[512];
	const char *p;

	b64decode(b64, body, sizeof(body));
	if ((p = strstr(body, "\"id\":\"")) == NULL || !uid_valid(p + 6, UID_TEXT_SIZE - 1))
		return -1;
	memcpy(id, p + 6, UID_TEXT_SIZE - 1);
	id[UID_TEXT_SIZE - 1] = '\0';
	return 0;
}

/* it, accepted: its GETs begin. */
static void follow(struct item *it)
{
	it->next_at = wall();
	pthread_mutex_lock(&mu);
	fifo_push(&fresh, it);
	pending++;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* A line of bench/attack, "CODE START_NS LATENCY_NS ID", into it (done_at,
 * id: "" when CODE is not 200, "-" when a 200's body had no id) and the
 * POST figures. 0 or -1. */
static int attack_line(const char *line, struct item *it, double **post_ms, size_t *post_n,
                       size_t *post_cap, double *first, double *last)
{
	long long start_ns, lat_ns;
	char id[64];
	int code;

	if (sscanf(line, "%d %lld %lld %63s", &code, &start_ns, &lat_ns, id) != 4 || lat_ns < 0)
		return -1;
	it->done_at = (double)(start_ns + lat_ns) / 1e9;
	if (*first == 0 || it->done_at < *first)
		*first = it->done_at;
	if (it->done_at > *last)
		*last = it->done_at;
	push_ms(post_ms, post_n, post_cap, (double)lat_ns / 1e6);
	if (code != 200)
		it->id[0] = '\0';
	else if (!uid_valid(id, strlen(id)))
		memcpy(it->id, "-", 2);
	else
		memcpy(it->id, id, UID_TEXT_SIZE);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)n);
	return v[i >= n ? n - 1 : i];
}

int main(int argc, char **argv)
{
	pthread_t th[POLLERS];
	double *post_ms = NULL, first = 0, last = 0;
	size_t post_n = 0, post_cap = 0, i;
	long posts = 0, non2xx = 0, bad_body = 0, every, seq = 0;
	char line[16384];
	FILE *out;

	if (argc != 5 || (every = atol(argv[2])) < 1 || atof(argv[3]) <= 0) {
		fprintf(stderr, "usage: readable QUERY_URL EVERY INTERVAL_MS OUT_FILE\n");
		return 2;
	}
	query_url = argv[1];
	interval_s = atof(argv[3]) / 1e3;
	if (clock_cond_init(&cv) != 0) {
		fprintf(stderr, "readable: cannot create a condition variable\n");
		return 1;
	}
	if ((out = fopen(argv[4], "w")) == NULL) {
		perror(argv[4]);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (i = 0; i < POLLERS; i++)
		pthread_create(&th[i], NULL, poller, NULL);

	while (fgets(line, sizeof(line), stdin) != NULL) {
		struct json_object *o, *code, *tsv, *lat, *body;
		struct ts_instant start;
		char errstr[128];
		struct item it;
		const char *t;

		if (line[0] != '{') { /* bench/attack's line */
			if (attack_line(line, &it, &post_ms, &post_n, &post_cap, &first, &last) != 0) {
				fprintf(stderr, "readable: not an attack result: %.80s\n", line);
				return 1;
			}
			posts++;
			if (it.id[0] == '\0')
				non2xx++;
			else if (it.id[0] == '-')
				bad_body++;
			else if (seq++ % every == 0)
				follow(&it);
			continue;
		}
		o = json_tokener_parse(line);
		if (o == NULL || !json_object_object_get_ex(o, "code", &code) ||
		    !json_object_object_get_ex(o, "timestamp", &tsv) ||
		    !json_object_object_get_ex(o, "latency", &lat) ||
		    (t = json_object_get_string(tsv)) == NULL ||
		    ts_parse_rfc3339(t, strlen(t), &start, errstr, sizeof(errstr)) != 0) {
			fprintf(stderr, "readable: not a vegeta result: %.80s\n", line);
			json_object_put(o);
			return 1;
		}
		posts++;
		it.done_at = (double)start.sec + (double)start.nsec / 1e9 +
		             (double)json_object_get_int64(lat) / 1e9;
		if (first == 0 || it.done_at < first)
			first = it.done_at;
		if (it.done_at > last)
			last = it.done_at;
		push_ms(&post_ms, &post_n, &post_cap, (double)json_object_get_int64(lat) / 1e6);
		if (json_object_get_int(code) != 200) {
			non2xx++;
		} else if (!json_object_object_get_ex(o, "body", &body) ||
		           body_id(json_object_get_string(body), it.id) != 0) {
			bad_body++;
		} else if (seq++ % every == 0) {
			follow(&it);
		}
		json_object_put(o);
	}
	pthread_mutex_lock(&mu);
	input_done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (i = 0; i < POLLERS; i++)
		pthread_join(th[i], NULL);

	qsort(post_ms, post_n, sizeof(double), cmp_double);
	for (i = 0; i < found_n; i++) /* in the order found: a timeline */
		fprintf(out, "%.3f %.3f\n", found_ms[i], found_at[i] - first);
	fclose(out);
	qsort(found_ms, found_n, sizeof(double), cmp_double);
	printf("posts=%ld rate=%.0f non2xx=%ld bad_body=%ld post_p50_ms=%.2f post_p99_ms=%.2f "
	       "post_max_ms=%.2f sampled=%ld readable=%zu lost=%ld get_errors=%ld gets=%ld "
	       "readable_p50_ms=%.2f readable_p99_ms=%.2f readable_max_ms=%.2f\n",
	       posts, last > first ? (double)posts / (last - first) : 0.0, non2xx, bad_body,
	       pct(post_ms, post_n, 50), pct(post_ms, post_n, 99),
	       post_n ? post_ms[post_n - 1] : 0.0, (long)found_n + lost, found_n, lost, get_errors,
	       gets, pct(found_ms, found_n, 50), pct(found_ms, found_n, 99),
	       found_n ? found_ms[found_n - 1] : 0.0);
	free(post_ms);
	free(found_ms);
	free(found_at);
	curl_global_cleanup();
	return 0;
}
