/* ready_stop_test: the consumer is asked /ready by several clients at once,
 * without pause, while SIGTERM arrives: it exits 0 every time. /ready asks
 * the Kafka handle about the topic (at most once a second), so the HTTP
 * server must stop before that handle is destroyed. */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "fault.h"
#include "faults.h"

#define ROUNDS 10
#define CLIENTS 4
#define HAMMER_MS 1500 /* /ready under fire before the signal */

static struct hammer {
	pthread_t tid;
	atomic_bool stop;
	bool running;
	long asked, answered; /* requests sent, and answered 200 or 503 */
} clients[CLIENTS];

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	CURL *curl = curl_easy_init();
	struct http_resp resp;
	char url[128];

	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	while (curl != NULL && !atomic_load(&h->stop)) {
		h->asked++;
		if (http_request(curl, "GET", url, NULL, NULL, 0, &resp) == 0 &&
		    (resp.status == 200 || resp.status == 503))
			h->answered++;
		http_resp_clear(&resp);
	}
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return NULL;
}

static void hammer_stop(void)
{
	for (int i = 0; i < CLIENTS; i++) {
		if (!clients[i].running)
			continue;
		atomic_store(&clients[i].stop, true);
		pthread_join(clients[i].tid, NULL);
		clients[i].running = false;
	}
}

static void teardown(void)
{
	hammer_stop();
	fault_teardown(NULL, 0);
}

START_TEST(sigterm_while_ready_is_probed)
{
	for (int round = 1; round <= ROUNDS; round++) {
		long asked = 0, answered = 0, took;

		fault_start(STACK_CONSUMER, NULL);
		for (int i = 0; i < CLIENTS; i++) {
			clients[i] = (struct hammer){.running = true};
			ck_assert_int_eq(pthread_create(&clients[i].tid, NULL, hammer_main, &clients[i]),
			                 0);
		}
		proc_sleep_ms(HAMMER_MS);
		took = fault_sigterm(&stack.svc[STACK_CONSUMER]); /* asserts exit 0 within 10 s */
		hammer_stop();
		for (int i = 0; i < CLIENTS; i++) {
			asked += clients[i].asked;
			answered += clients[i].answered;
		}
		printf("  round %d: exited 0 %.2f s after SIGTERM; %ld of %ld /ready probes "
		       "answered\n",
		       round, fault_secs(took), answered, asked);
		ck_assert_msg(answered > 0, "round %d: no /ready probe was answered", round);
	}
}
END_TEST

Suite *make_readystop_suite(void)
{
	Suite *s = suite_create("readystop");
	TCase *tc = tcase_create("sigterm");

	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, sigterm_while_ready_is_probed);
	suite_add_tcase(s, tc);
	return s;
}
