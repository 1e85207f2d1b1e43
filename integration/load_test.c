/* load_test: many concurrent clients: every ticket answered 200 with its
 * own id, and every one of them readable by many concurrent readers, more
 * of them than the query service has connections: it reads their lookups
 * together (its query_batch_size histogram shows statements for more than
 * one id), and each must still get its own record. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "store.h"
#include "suites.h"
#include "uid.h"

#define N_TICKETS 1000
#define N_CLIENTS 16
#define ALL_READABLE_MS 60000

struct client {
	int first, count;          /* tickets [first, first + count) */
	char (*ids)[UID_TEXT_SIZE]; /* shared array of N_TICKETS */
	int failures;
	char failure[256];          /* the first one */
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	CURL *curl = curl_easy_init();
	struct http_resp resp;
	char url[128];

	if (curl == NULL) {
		c->failures = c->count;
		snprintf(c->failure, sizeof(c->failure), "curl_easy_init failed");
		return NULL;
	}
	for (int i = c->first; i < c->first + c->count; i++) {
		json_object *jobj = NULL;
		const char *id;

		/* Alternate the three routes that take a ticket. */
		if (i % 3 == 0)
			stack_url(url, sizeof(url), STACK_COMMAND, "/app");
		else if (i % 3 == 1)
			stack_url(url, sizeof(url), STACK_COMMAND, "/api/v1/timestamp");
		else
			stack_url(url, sizeof(url), STACK_COMMAND,
			          "/api/v1/timestamp/2009-09-28T19:03:12.%06dZ", i);
		if (http_request(curl, "POST", url, NULL, NULL, 0, &resp) != 0 || resp.status != 200 ||
		    (jobj = http_resp_json(&resp)) == NULL || !is_uuid(id = json_str(jobj, "id"))) {
			if (c->failures++ == 0)
				snprintf(c->failure, sizeof(c->failure), "ticket %d: %ld %.200s", i, resp.status,
				         resp.body ? resp.body : resp.errstr);
		} else {
			memcpy(c->ids[i], id, UID_TEXT_SIZE);
		}
		json_object_put(jobj);
		http_resp_clear(&resp);
	}
	curl_easy_cleanup(curl);
	return NULL;
}

/* GET id from the query service: 0 and the body's fields checked, or -1
 * with why. want is 200 or 404; usec >= 0 is the expected fraction of the
 * event time (tickets posted with 2009-09-28T19:03:12.<usec>Z). */
static int read_one(CURL *curl, const char *id, long want, long usec, char *why, size_t size)
{
	struct http_resp resp;
	json_object *jobj = NULL;
	char url[128];
	int rc = -1;

	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", id);
	if (http_request(curl, "GET", url, NULL, NULL, 0, &resp) != 0 || resp.status != want) {
		snprintf(why, size, "GET %s: %ld %.200s", id, resp.status,
		         resp.body ? resp.body : resp.errstr);
	} else if (want == 404) {
		rc = 0;
	} else if ((jobj = http_resp_json(&resp)) == NULL || json_str(jobj, "id") == NULL ||
	           strcmp(json_str(jobj, "id"), id) != 0) {
		snprintf(why, size, "GET %s answered another record: %.200s", id, resp.body);
	} else if (usec >= 0) {
		struct ts_instant t = parse_ts(json_str(jobj, "event_timestamp"));
		if (t.sec == 1254164592 && t.nsec == usec * 1000)
			rc = 0;
		else
			snprintf(why, size, "GET %s: event time of another record: %.200s", id, resp.body);
	} else {
		rc = 0;
	}
	json_object_put(jobj);
	http_resp_clear(&resp);
	return rc;
}

/* Reads tickets [first, first + count), and with them another client's
 * ticket and an id nobody posted, so that lookups read together mix found,
 * missing and repeated ids. */
static void *reader_main(void *arg)
{
	struct client *c = arg;
	CURL *curl = curl_easy_init();
	char missing[UID_TEXT_SIZE];

	for (int i = c->first; curl != NULL && i < c->first + c->count; i++) {
		int other = (i * 7 + 13) % N_TICKETS;

		uid_v4(missing);
		if (read_one(curl, c->ids[i], 200, i % 3 == 2 ? i : -1, c->failure,
		             sizeof(c->failure)) != 0 ||
		    read_one(curl, c->ids[other], 200, other % 3 == 2 ? other : -1, c->failure,
		             sizeof(c->failure)) != 0 ||
		    read_one(curl, missing, 404, -1, c->failure, sizeof(c->failure)) != 0) {
			c->failures++;
			break;
		}
	}
	if (curl == NULL) {
		c->failures++;
		snprintf(c->failure, sizeof(c->failure), "curl_easy_init failed");
	}
	curl_easy_cleanup(curl);
	return NULL;
}

/* The value of an unlabelled series of the query service's /metrics
 * (e.g. "query_batch_size_sum"). Asserts that it is there. */
static double query_metric(const char *series)
{
	struct http_resp resp;
	char url[128];
	const size_t len = strlen(series);
	const char *p;
	double value = -1;

	stack_url(url, sizeof(url), STACK_QUERY, "/metrics");
	ck_assert_msg(http_get(url, NULL, &resp) == 0 && resp.status == 200 && resp.body != NULL,
	              "GET %s: %ld %s", url, resp.status, resp.errstr);
	for (p = resp.body; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, series, len) == 0 && p[len] == ' ') {
			value = strtod(p + len + 1, NULL);
			break;
		}
	}
	http_resp_clear(&resp);
	ck_assert_msg(value >= 0, "no %s in the query service's /metrics", series);
	return value;
}

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

START_TEST(concurrent_tickets)
{
	static char ids[N_TICKETS][UID_TEXT_SIZE], sorted[N_TICKETS][UID_TEXT_SIZE];
	struct client clients[N_CLIENTS];
	pthread_t threads[N_CLIENTS];
	const char *id_list[N_TICKETS];
	char errstr[512];
	long count = 0, started;
	int failures = 0;
	double ids_before, statements_before, ids_read, statements;

	memset(ids, 0, sizeof(ids));
	for (int t = 0; t < N_CLIENTS; t++) {
		clients[t] = (struct client){.first = t * N_TICKETS / N_CLIENTS,
		                             .count = (t + 1) * N_TICKETS / N_CLIENTS -
		                                      t * N_TICKETS / N_CLIENTS,
		                             .ids = ids};
		ck_assert_int_eq(pthread_create(&threads[t], NULL, client_main, &clients[t]), 0);
	}
	for (int t = 0; t < N_CLIENTS; t++) {
		pthread_join(threads[t], NULL);
		failures += clients[t].failures;
	}
	for (int t = 0; t < N_CLIENTS; t++)
		ck_assert_msg(clients[t].failures == 0, "%d of %d tickets failed; first: %s", failures,
		              N_TICKETS, clients[t].failure);

	/* Distinct ids. */
	memcpy(sorted, ids, sizeof(ids));
	qsort(sorted, N_TICKETS, UID_TEXT_SIZE, cmp_ids);
	for (int i = 1; i < N_TICKETS; i++)
		ck_assert_msg(strcmp(sorted[i - 1], sorted[i]) != 0, "id %s given twice", sorted[i]);

	/* All of them land in the database... */
	for (int i = 0; i < N_TICKETS; i++)
		id_list[i] = ids[i];
	started = clock_mono_ms();
	for (;;) {
		ck_assert_msg(store_count_ids(stack.db_url, id_list, N_TICKETS, &count, errstr,
		                              sizeof(errstr)) == 0,
		              "%s", errstr);
		if (count == N_TICKETS || clock_mono_ms() - started > ALL_READABLE_MS)
			break;
		proc_sleep_ms(100);
	}
	ck_assert_msg(count == N_TICKETS, "%ld of %d tickets in the database after %d ms", count,
	              N_TICKETS, ALL_READABLE_MS);

	/* ...and the query service serves each one to concurrent readers. */
	ids_before = query_metric("query_batch_size_sum");
	statements_before = query_metric("query_batch_size_count");
	for (int t = 0; t < N_CLIENTS; t++) {
		clients[t].failures = 0;
		ck_assert_int_eq(pthread_create(&threads[t], NULL, reader_main, &clients[t]), 0);
	}
	for (int t = 0; t < N_CLIENTS; t++)
		pthread_join(threads[t], NULL);
	for (int t = 0; t < N_CLIENTS; t++)
		ck_assert_msg(clients[t].failures == 0, "reader %d: %s", t, clients[t].failure);

	/* Read together: fewer statements than ids. Every reader ran its
	 * reads through; 16 readers against 8 connections queue, and a queue
	 * is read in one statement. */
	ids_read = query_metric("query_batch_size_sum") - ids_before;
	statements = query_metric("query_batch_size_count") - statements_before;
	printf("  %d readers read %.0f ids with %.0f statements (%.2f ids a statement)\n", N_CLIENTS,
	       ids_read, statements, statements > 0 ? ids_read / statements : 0.0);
	ck_assert_msg(ids_read >= 3.0 * N_TICKETS, "%.0f ids read, want at least %d", ids_read,
	              3 * N_TICKETS);
	ck_assert_msg(statements < ids_read, "%.0f statements for %.0f ids: no lookups read together",
	              statements, ids_read);
}
END_TEST

Suite *make_load_suite(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("concurrent");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, concurrent_tickets);
	suite_add_tcase(s, tc);
	return s;
}
