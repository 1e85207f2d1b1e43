/* read_test: the read side beyond one GET: ranges in keyset pages
 * (GET /api/v1/timestamps, cursor, Link), the counts projection
 * (GET /api/v1/timestamps/counts) against SELECT count(*) … GROUP BY,
 * ETag / Cache-Control / If-None-Match on GET /api/v1/timestamp/{id}, and
 * the command service's Location.
 *
 * Each test writes its records into a window of event times of its own
 * (years 2300 on, apart per test and per run), so that the records other
 * suites write never fall into it. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"
#include "store.h"
#include "suites.h"
#include "topic.h"
#include "uid.h"

#define RANGE "/api/v1/timestamps"
#define COUNTS "/api/v1/timestamps/counts"
#define FOREVER "public, max-age=31536000, immutable"
#define US_PER_DAY (86400 * 1000000LL)

/* The first instant of test window salt (0-5): four days of its own, from
 * 2300 on, apart from other runs' too. */
static int64_t window(int salt)
{
	return (ts_days_from_civil(2300, 1, 1) + (getpid() % 5000) * 64 + salt * 4) * US_PER_DAY;
}

static void format_us(int64_t us, char *buf)
{
	struct ts_instant t = {.sec = us / 1000000, .nsec = (int32_t)(us % 1000000) * 1000};

	ts_format(&t, 6, buf);
}

/* POSTs a command for the instant us (headers may be NULL); its id to id. */
static void post_at(int64_t us, const char *const *headers, char *id)
{
	char text[TS_TEXT_MAX], path[128];

	format_us(us, text);
	snprintf(path, sizeof(path), "/api/v1/timestamp/%s", text);
	post_ticket(path, headers, id);
}

/* Waits until every one of ids[0..n) is a row (distinct ids). */
static void wait_rows(char (*ids)[UID_TEXT_SIZE], int n)
{
	const char **list = malloc((size_t)n * sizeof(*list));
	long count = -1, deadline = clock_mono_ms() + 2 * READ_TIMEOUT_MS;
	char errstr[512];

	ck_assert_ptr_nonnull(list);
	for (int i = 0; i < n; i++)
		list[i] = ids[i];
	while (clock_mono_ms() < deadline) {
		ck_assert_msg(store_count_ids(stack.db_url, list, (size_t)n, &count, errstr,
		                              sizeof(errstr)) == 0,
		              "%s", errstr);
		if (count == n)
			break;
		proc_sleep_ms(50);
	}
	free(list);
	ck_assert_msg(count == n, "%ld of %d records stored within %d ms", count, n,
	              2 * READ_TIMEOUT_MS);
}

/* Waits until the consumer has handled every message sent so far: a
 * sentinel in every partition is readable. */
static void wait_settled(void)
{
	int64_t hi[64];
	int n = 0;
	char errstr[512];

	ck_assert_msg(topic_high_watermarks(stack.broker, stack.topic, hi, 64, &n, errstr,
	                                    sizeof(errstr)) == 0,
	              "%s", errstr);
	for (int p = 0; p < n; p++)
		ck_assert_msg(stack_sentinel(p, READ_TIMEOUT_MS, NULL, errstr, sizeof(errstr)) == 0,
		              "%s", errstr);
}

/* GET of the query service's path (relative, as Link and Location give it). */
static void get_path(const char *path, const char *const *headers, struct http_resp *resp)
{
	char url[2048];

	stack_url(url, sizeof(url), STACK_QUERY, "%s", path);
	ck_assert_msg(http_get(url, headers, resp) == 0, "GET %s: %s", path, resp->errstr);
}

/* The target of a Link: <target>; rel="next" header into buf. */
static void next_target(const char *link, char *buf, size_t size)
{
	const char *lt = strchr(link, '<'), *gt = strchr(link, '>');

	ck_assert_msg(lt == link && gt != NULL && strcmp(gt, ">; rel=\"next\"") == 0,
	              "Link '%s' is not <target>; rel=\"next\"", link);
	ck_assert_msg((size_t)(gt - lt) < size, "Link too long: %s", link);
	snprintf(buf, size, "%.*s", (int)(gt - lt - 1), lt + 1);
	ck_assert_msg(strncmp(buf, RANGE "?", sizeof(RANGE)) == 0, "Link target %s", buf);
}

/* ---- ranges ------------------------------------------------------------ */

#define WALK_SEEDED 240 /* records in the window before the walk */
#define WALK_LIMIT 7
#define WALK_MAX 2000   /* records the writer may add */

/* The writer: POSTs records into the window while the walk goes on. */
struct writer {
	int64_t from_us;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int posted;        /* under mu */
	bool stop, failed; /* under mu */
	char failure[512];
	char ids[WALK_MAX][UID_TEXT_SIZE];
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	char text[TS_TEXT_MAX], url[256];
	struct http_resp resp;

	for (int i = 0; i < WALK_MAX; i++) {
		json_object *jobj;
		const char *id;

		/* Everywhere in the window: before the walk's position and after. */
		format_us(w->from_us + (i * 37 % (WALK_SEEDED / 3)) * 1000000LL + 500000 + i, text);
		stack_url(url, sizeof(url), STACK_COMMAND, "/api/v1/timestamp/%s", text);
		if (http_post(url, NULL, &resp) != 0 || resp.status != 200 ||
		    (jobj = http_resp_json(&resp)) == NULL) {
			pthread_mutex_lock(&w->mu);
			snprintf(w->failure, sizeof(w->failure), "writer: POST %s: %ld %s", text,
			         resp.status, resp.body ? resp.body : resp.errstr);
			w->failed = w->stop = true;
			pthread_cond_broadcast(&w->cv);
			pthread_mutex_unlock(&w->mu);
			http_resp_clear(&resp);
			return NULL;
		}
		id = json_str(jobj, "id");
		pthread_mutex_lock(&w->mu);
		snprintf(w->ids[i], UID_TEXT_SIZE, "%s", id != NULL ? id : "");
		w->posted = i + 1;
		pthread_cond_broadcast(&w->cv);
		bool stop = w->stop;
		pthread_mutex_unlock(&w->mu);
		json_object_put(jobj);
		http_resp_clear(&resp);
		if (stop)
			break;
	}
	return NULL;
}

/* Waits until the writer has posted more than `than` (or failed). */
static void wait_posted(struct writer *w, int than)
{
	long deadline = clock_mono_ms() + READ_TIMEOUT_MS;

	pthread_mutex_lock(&w->mu);
	while (w->posted <= than && !w->failed && w->posted < WALK_MAX &&
	       clock_mono_ms() < deadline) {
		pthread_mutex_unlock(&w->mu);
		proc_sleep_ms(5);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
}

static int find_id(char (*ids)[UID_TEXT_SIZE], int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return i;
	return -1;
}

START_TEST(pages_return_every_record_once_while_writes_continue)
{
	static char seeded[WALK_SEEDED][UID_TEXT_SIZE], seen[WALK_SEEDED + WALK_MAX][UID_TEXT_SIZE];
	static struct writer w;
	const int64_t from = window(0), to = from + (WALK_SEEDED / 3 + 1) * 1000000LL;
	char from_text[TS_TEXT_MAX], to_text[TS_TEXT_MAX], path[1024], last_id[UID_TEXT_SIZE] = "";
	int64_t last_us = INT64_MIN;
	int n_seen = 0, pages = 0, extra = 0, seeded_seen = 0;
	pthread_t thread;

	/* Three records per instant: the id orders them. */
	for (int i = 0; i < WALK_SEEDED; i++)
		post_at(from + (i / 3) * 1000000LL, NULL, seeded[i]);
	wait_rows(seeded, WALK_SEEDED);

	w.from_us = from;
	pthread_mutex_init(&w.mu, NULL);
	ck_assert_int_eq(pthread_create(&thread, NULL, write_loop, &w), 0);
	format_us(from, from_text);
	format_us(to, to_text);
	snprintf(path, sizeof(path), RANGE "?from=%s&to=%s&limit=%d", from_text, to_text,
	         WALK_LIMIT);
	for (;;) {
		struct http_resp resp;
		json_object *jobj, *records;
		int n;

		/* A write goes out between any two pages. */
		pthread_mutex_lock(&w.mu);
		int posted = w.posted;
		pthread_mutex_unlock(&w.mu);
		wait_posted(&w, posted);

		get_path(path, NULL, &resp);
		jobj = check_json_200(&resp);
		ck_assert_str_eq(resp.cache_control, "no-store");
		ck_assert_msg(json_object_object_get_ex(jobj, "records", &records) &&
		                  json_object_is_type(records, json_type_array),
		              "no records array: %s", resp.body);
		n = (int)json_object_array_length(records);
		pages++;
		for (int i = 0; i < n; i++) {
			json_object *rec = json_object_array_get_idx(records, i);
			const char *id = json_str(rec, "id"), *ev = json_str(rec, "event_timestamp");
			int64_t us;

			ck_assert_msg(is_uuid(id) && ev != NULL, "page %d: bad record %s", pages,
			              json_object_to_json_string(rec));
			us = ts_micros(parse_ts(ev));
			ck_assert_msg(us >= from && us < to, "page %d: %s at %s outside [%s, %s)", pages,
			              id, ev, from_text, to_text);
			ck_assert_msg(us > last_us || (us == last_us && strcmp(id, last_id) > 0),
			              "page %d: %s at %s does not come after %s at %lld us", pages, id,
			              ev, last_id, (long long)last_us);
			ck_assert_msg(find_id(seen, n_seen, id) < 0, "page %d: %s a second time", pages,
			              id);
			ck_assert_int_lt(n_seen, WALK_SEEDED + WALK_MAX);
			snprintf(seen[n_seen++], UID_TEXT_SIZE, "%s", id);
			last_us = us;
			snprintf(last_id, sizeof(last_id), "%s", id);
		}
		json_object_put(jobj);
		if (resp.link[0] == '\0') {
			http_resp_clear(&resp);
			break;
		}
		ck_assert_msg(n == WALK_LIMIT, "page %d: %d records and a next page", pages, n);
		next_target(resp.link, path, sizeof(path));
		http_resp_clear(&resp);
		ck_assert_msg(pages < (WALK_SEEDED + WALK_MAX) / WALK_LIMIT + 2,
		              "the walk does not end: %d pages", pages);
	}
	pthread_mutex_lock(&w.mu);
	w.stop = true;
	pthread_mutex_unlock(&w.mu);
	pthread_join(thread, NULL);
	ck_assert_msg(!w.failed, "%s", w.failure);

	for (int i = 0; i < WALK_SEEDED; i++)
		ck_assert_msg(find_id(seen, n_seen, seeded[i]) >= 0,
		              "record %s (stored before the walk) missing from the pages", seeded[i]);
	for (int i = 0; i < n_seen; i++) {
		if (find_id(seeded, WALK_SEEDED, seen[i]) >= 0) {
			seeded_seen++;
			continue;
		}
		ck_assert_msg(find_id(w.ids, w.posted, seen[i]) >= 0,
		              "record %s in the pages was never written by this test", seen[i]);
		extra++;
	}
	printf("ranges: %d pages of %d, %d records stored before the walk, all seen once; "
	       "%d of the %d written during the walk seen too\n",
	       pages, WALK_LIMIT, seeded_seen, extra, w.posted);
}
END_TEST

/* Each record of a page is the single GET's body, byte for byte; the last
 * page has no Link; limit, from with an offset (%2B). */
START_TEST(page_records_are_the_single_get)
{
	const int64_t from = window(1);
	char ids[3][UID_TEXT_SIZE], path[1024], from_text[TS_TEXT_MAX], to_text[TS_TEXT_MAX];
	struct http_resp resp, one;
	json_object *jobj, *records;

	for (int i = 0; i < 3; i++)
		post_at(from + i * 1500000LL, NULL, ids[i]);
	wait_rows(ids, 3);
	format_us(from, from_text);
	format_us(from + US_PER_DAY, to_text);

	snprintf(path, sizeof(path), RANGE "?from=%s&to=%s", from_text, to_text);
	get_path(path, NULL, &resp);
	jobj = check_json_200(&resp);
	ck_assert_msg(resp.link[0] == '\0', "Link on the only page: %s", resp.link);
	ck_assert(json_object_object_get_ex(jobj, "records", &records));
	ck_assert_int_eq(json_object_array_length(records), 3);
	ck_assert_int_eq(json_object_object_length(jobj), 1);
	for (int i = 0; i < 3; i++) {
		const char *rec = json_object_to_json_string_ext(
		    json_object_array_get_idx(records, i), JSON_C_TO_STRING_PLAIN);
		char single[256];

		snprintf(single, sizeof(single), "/api/v1/timestamp/%s", ids[i]);
		get_path(single, NULL, &one);
		ck_assert_int_eq(one.status, 200);
		ck_assert_msg(strstr(resp.body, one.body) != NULL,
		              "the page %s does not hold the single GET's %s", resp.body, one.body);
		ck_assert_str_eq(rec, one.body);
		http_resp_clear(&one);
	}
	json_object_put(jobj);
	http_resp_clear(&resp);

	/* The same instant written at +02:00, the + escaped or not (a '+' is not
	 * a space here); two a page. */
	for (int plus = 0; plus < 2; plus++) {
		snprintf(path, sizeof(path), RANGE "?from=%.11s02%.6s%s02:00&limit=2&to=%s",
		         from_text, from_text + 13, plus ? "+" : "%2B", to_text);
		get_path(path, NULL, &resp);
		jobj = check_json_200(&resp);
		ck_assert(json_object_object_get_ex(jobj, "records", &records));
		ck_assert_int_eq(json_object_array_length(records), 2);
		ck_assert_str_eq(json_str(json_object_array_get_idx(records, 0), "id"), ids[0]);
		ck_assert_msg(resp.link[0] != '\0', "no Link with a third record to come");
		next_target(resp.link, path, sizeof(path));
		json_object_put(jobj);
		http_resp_clear(&resp);
	}
	get_path(path, NULL, &resp);
	jobj = check_json_200(&resp);
	ck_assert(json_object_object_get_ex(jobj, "records", &records));
	ck_assert_int_eq(json_object_array_length(records), 1);
	ck_assert_str_eq(json_str(json_object_array_get_idx(records, 0), "id"), ids[2]);
	ck_assert_msg(resp.link[0] == '\0', "Link on the last page: %s", resp.link);
	json_object_put(jobj);
	http_resp_clear(&resp);
}
END_TEST

/* A bad parameter: 400, the error naming it. */
static const struct {
	const char *path, *names;
} bad[] = {
    {RANGE "?limit=0", "limit"},
    {RANGE "?limit=1001", "limit"},
    {RANGE "?limit=ten", "limit"},
    {RANGE "?from=2009-09-28", "from"},
    {RANGE "?from=2009-09-28T19:03:12%2002:00", "from"}, /* a form's + decoded */
    {RANGE "?to=", "to"},
    {RANGE "?cursor=AQAAAAAAAAAAAAECAwQFBgcICQoLDA0ODx", "cursor"},
    {RANGE "?cursor=not-a-cursor", "cursor"},
    {RANGE "?sort=desc", "sort"},
    {RANGE "?limit=1&limit=2", "limit"},
    {COUNTS "?bucket=week&from=2009-09-28T00:00:00Z&to=2009-09-29T00:00:00Z", "bucket"},
    {COUNTS "?bucket=day&to=2009-09-29T00:00:00Z", "from"},
    {COUNTS "?bucket=day&from=2009-09-28T00:00:00Z", "to"},
    {COUNTS "?bucket=minute&from=2009-09-01T00:00:00Z&to=2009-10-01T00:00:00Z", "from, to"},
    {COUNTS "?bucket=day&from=2009-09-28T00:00:00Z&to=2009-09-29T00:00:00Z&x=1", "x"},
};

START_TEST(bad_parameter_is_400_naming_it)
{
	struct http_resp resp;
	json_object *jobj;
	const char *error;

	get_path(bad[_i].path, NULL, &resp);
	check_error(&resp, 400);
	jobj = http_resp_json(&resp);
	error = json_str(jobj, "error");
	ck_assert_msg(strstr(error, bad[_i].names) != NULL, "GET %s: the error does not name %s: %s",
	              bad[_i].path, bad[_i].names, error);
	json_object_put(jobj);
	http_resp_clear(&resp);
}
END_TEST

/* [from, to) with to before from is empty, not wrong. */
START_TEST(reversed_range_is_empty)
{
	struct http_resp resp;

	get_path(RANGE "?from=2009-09-29T00:00:00Z&to=2009-09-28T00:00:00Z", NULL, &resp);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(resp.body, "{\"records\":[]}");
	ck_assert_str_eq(resp.link, "");
	http_resp_clear(&resp);
	get_path(COUNTS "?bucket=day&from=2009-09-29T00:00:00Z&to=2009-09-28T00:00:00Z", NULL,
	         &resp);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(resp.body, "{\"bucket\":\"day\",\"counts\":[]}");
	http_resp_clear(&resp);
}
END_TEST

START_TEST(only_get)
{
	static const char *const paths[] = {RANGE, COUNTS};
	struct http_resp resp;
	char url[256];

	for (int i = 0; i < 2; i++) {
		stack_url(url, sizeof(url), STACK_QUERY, "%s", paths[i]);
		ck_assert_msg(http_post(url, NULL, &resp) == 0, "POST %s: %s", url, resp.errstr);
		check_error(&resp, 405);
		ck_assert_str_eq(resp.allow, "GET");
		http_resp_clear(&resp);
	}
}
END_TEST

/* ---- counts ------------------------------------------------------------ */

#define COUNTED 60
#define DUPLICATED 8

static const char *const bucket_names[] = {"minute", "hour", "day"};

/* Counts per bucket equal SELECT count(*) … GROUP BY over the records,
 * after duplicates (the same Idempotency-Key twice: one record, counted
 * once). */
START_TEST(counts_equal_group_by)
{
	const int64_t from = window(2 + _i), to = from + 3 * US_PER_DAY;
	char ids[COUNTED][UID_TEXT_SIZE], again[UID_TEXT_SIZE], key[96], path[512];
	char from_text[TS_TEXT_MAX], to_text[TS_TEXT_MAX], errstr[512], *rows, *want;
	const char *headers[] = {key, NULL};
	const char *vals[3] = {bucket_names[_i], from_text, to_text};
	struct http_resp resp;
	size_t pos = 0;
	long n = 0, total = 0;

	for (int i = 0; i < COUNTED; i++) {
		int64_t us = from + (i % 3) * US_PER_DAY + (i % 5) * 3600000000LL +
		             (i % 7) * 60000000LL + i * 1000LL;

		if (i < DUPLICATED) {
			snprintf(key, sizeof(key), "Idempotency-Key: read-counts-%d-%s-%d",
			         (int)getpid(), bucket_names[_i], i);
			post_at(us, headers, ids[i]);
			post_at(us, headers, again);
			ck_assert_str_eq(again, ids[i]);
		} else {
			post_at(us, NULL, ids[i]);
		}
	}
	wait_rows(ids, COUNTED);
	wait_settled(); /* the second copies too */

	format_us(from, from_text);
	format_us(to, to_text);
	ck_assert_msg(store_query(stack.db_url,
	                          "SELECT to_char(date_trunc($1, event_timestamp, 'UTC') AT TIME "
	                          "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), count(*) "
	                          "FROM timestamp_records WHERE event_timestamp >= $2::timestamptz "
	                          "AND event_timestamp < $3::timestamptz GROUP BY 1 ORDER BY 1",
	                          vals, 3, &rows, &n, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	want = malloc((size_t)n * 64 + 64);
	ck_assert_ptr_nonnull(want);
	pos += (size_t)sprintf(want, "{\"bucket\":\"%s\",\"counts\":[", bucket_names[_i]);
	for (char *line = rows, *bar, *nl; *line != '\0'; line = nl + 1) {
		bar = strchr(line, '|');
		nl = strchr(line, '\n');
		total += strtol(bar + 1, NULL, 10);
		pos += (size_t)sprintf(want + pos, "%s{\"start\":\"%.*s\",\"count\":%.*s}",
		                       line == rows ? "" : ",", (int)(bar - line), line,
		                       (int)(nl - bar - 1), bar + 1);
	}
	sprintf(want + pos, "]}");
	ck_assert_int_eq(total, COUNTED);

	snprintf(path, sizeof(path), COUNTS "?bucket=%s&from=%s&to=%s", bucket_names[_i],
	         from_text, to_text);
	get_path(path, NULL, &resp);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(resp.cache_control, "no-store");
	ck_assert_msg(strcmp(resp.body, want) == 0, "GET %s:\n%s\nSELECT … GROUP BY:\n%s", path,
	              resp.body, want);
	printf("counts per %s: %ld buckets, %ld records, as GROUP BY\n", bucket_names[_i], n,
	       total);
	free(rows);
	free(want);
	http_resp_clear(&resp);
}
END_TEST

/* ---- caching ----------------------------------------------------------- */

START_TEST(found_record_is_cached_for_good)
{
	char id[UID_TEXT_SIZE], path[128], inm[256], etag[128], body[512];
	const char *headers[] = {inm, NULL};
	struct http_resp resp;
	json_object *jobj;

	post_at(window(5) + 123456, NULL, id);
	jobj = get_record(id);
	json_object_put(jobj);
	snprintf(path, sizeof(path), "/api/v1/timestamp/%s", id);
	get_path(path, NULL, &resp);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_msg(strlen(resp.etag) == 18 && resp.etag[0] == '"' && resp.etag[17] == '"',
	              "ETag '%s' is not a strong quoted tag of 16 hex digits", resp.etag);
	ck_assert_str_eq(resp.cache_control, FOREVER);
	snprintf(etag, sizeof(etag), "%s", resp.etag);
	snprintf(body, sizeof(body), "%s", resp.body);
	http_resp_clear(&resp);

	/* The same record, the same tag. */
	get_path(path, NULL, &resp);
	ck_assert_str_eq(resp.etag, etag);
	ck_assert_str_eq(resp.body, body);
	http_resp_clear(&resp);

	/* If-None-Match values around the tag (NULL: without it). */
	static const struct {
		const char *before, *after;
	} matching[] = {{"", ""}, {"W/", ""}, {"*", NULL}, {"\"other\", ", ""}, {" W/\"x\" ,W/", " "}};
	for (size_t i = 0; i < sizeof(matching) / sizeof(matching[0]); i++) {
		snprintf(inm, sizeof(inm), "If-None-Match: %s%s%s", matching[i].before,
		         matching[i].after != NULL ? etag : "",
		         matching[i].after != NULL ? matching[i].after : "");
		get_path(path, headers, &resp);
		ck_assert_msg(resp.status == 304, "%s: %ld, want 304", inm, resp.status);
		ck_assert_msg(resp.body == NULL || resp.body_len == 0, "%s: a 304 with a body", inm);
		ck_assert_str_eq(resp.etag, etag);
		ck_assert_str_eq(resp.cache_control, FOREVER);
		http_resp_clear(&resp);
	}
	static const char *const other[] = {"\"other\"", "W/\"other\", \"0000000000000000\""};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		snprintf(inm, sizeof(inm), "If-None-Match: %s", other[i]);
		get_path(path, headers, &resp);
		ck_assert_msg(resp.status == 200, "%s: %ld, want 200", inm, resp.status);
		ck_assert_str_eq(resp.body, body);
		ck_assert_str_eq(resp.etag, etag);
		http_resp_clear(&resp);
	}
}
END_TEST

START_TEST(missing_record_is_not_stored)
{
	const char *headers[] = {"If-None-Match: *", NULL};
	struct http_resp resp;

	for (int i = 0; i < 2; i++) {
		get_path("/api/v1/timestamp/00000000-0000-4000-8000-000000000000", i ? headers : NULL,
		         &resp);
		check_error(&resp, 404);
		ck_assert_str_eq(resp.cache_control, "no-store");
		ck_assert_str_eq(resp.etag, "");
		http_resp_clear(&resp);
	}
}
END_TEST

/* ---- Location ---------------------------------------------------------- */

START_TEST(accepted_command_says_where_to_read_it)
{
	char url[256], path[128];
	struct http_resp resp, rec;
	json_object *jobj;

	stack_url(url, sizeof(url), STACK_COMMAND, "/api/v1/timestamp/%s", "2300-01-01T00:00:00Z");
	ck_assert_msg(http_post(url, NULL, &resp) == 0, "POST %s: %s", url, resp.errstr);
	jobj = check_json_200(&resp);
	snprintf(path, sizeof(path), "/api/v1/timestamp/%s", json_str(jobj, "id"));
	ck_assert_str_eq(resp.location, path);
	ck_assert_msg(wait_record(json_str(jobj, "id"), READ_TIMEOUT_MS, &rec) == 0,
	              "record not readable: %ld", rec.status);
	http_resp_clear(&rec);
	get_path(resp.location, NULL, &rec);
	ck_assert_int_eq(rec.status, 200);
	http_resp_clear(&rec);
	json_object_put(jobj);
	http_resp_clear(&resp);
}
END_TEST

/* A QUERY_PUBLIC_URL that cannot start a Location: exit 2 at start, one
 * line naming it (the process stops before it listens). */
START_TEST(bad_query_public_url_stops_start_up)
{
	static const char *const urls[] = {"ftp://example", "http://a b", "127.0.0.1:7082"};
	char env[128], log_name[64], log_path[1024], errstr[512], line[512];
	const char *extra[] = {env, NULL};
	struct svc s;
	long deadline;
	FILE *f;
	bool named = false;

	snprintf(env, sizeof(env), "QUERY_PUBLIC_URL=%s", urls[_i]);
	snprintf(log_name, sizeof(log_name), "read-query-url-%d.log", _i);
	snprintf(log_path, sizeof(log_path), "%s/%s", stack.state_dir, log_name);
	unlink(log_path);
	ck_assert_msg(stack_spawn(&s, STACK_COMMAND, stack.port[STACK_COMMAND], "command-service",
	                          log_name, extra, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	deadline = clock_mono_ms() + 10000;
	while (svc_alive(&s) && clock_mono_ms() < deadline)
		proc_sleep_ms(20);
	ck_assert_msg(!svc_alive(&s), "still running after 10 s with %s", env);
	ck_assert_msg(s.status == 2, "%s: exit status %d, want 2", env, s.status);
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		named |= strstr(line, "QUERY_PUBLIC_URL") != NULL;
	fclose(f);
	ck_assert_msg(named, "%s: nothing in %s names QUERY_PUBLIC_URL", env, log_path);
}
END_TEST

Suite *make_read_suite(void)
{
	Suite *s = suite_create("read");
	TCase *tc;

	tc = tcase_create("ranges");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, pages_return_every_record_once_while_writes_continue);
	tcase_add_test(tc, page_records_are_the_single_get);
	tcase_add_loop_test(tc, bad_parameter_is_400_naming_it, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, reversed_range_is_empty);
	tcase_add_test(tc, only_get);
	suite_add_tcase(s, tc);

	tc = tcase_create("counts");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, counts_equal_group_by, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("caching");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, found_record_is_cached_for_good);
	tcase_add_test(tc, missing_record_is_not_stored);
	suite_add_tcase(s, tc);

	tc = tcase_create("location");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, accepted_command_says_where_to_read_it);
	tcase_add_loop_test(tc, bad_query_public_url_stops_start_up, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}
