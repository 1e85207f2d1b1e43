/* test_feed: the Prefer header's wait (RFC 7240 syntax), the ring the
 * streams follow, the hand-over from table pages to the ring without gap
 * or duplicate, and the admission and deadlines of waiters
 * (query-service/feed.c; its thread against a server that is not there). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "feed.h"
#include "stream.h"
#include "suites.h"

START_TEST(prefer_wait_follows_rfc_7240)
{
	static const struct {
		const char *prefer;
		long want; /* ms; -1: unusable */
	} cases[] = {
	    {"wait=5", 5000},
	    {"WAIT=5", 5000},
	    {"Wait=0", 0},
	    {"respond-async, wait=10", 10000},
	    {"respond-async,wait=10", 10000},
	    {"  wait = 3 ", 3000},
	    {"wait=\"7\"", 7000},
	    {"wait=2;foo=bar", 2000},
	    {"return=minimal; foo=\"a,b\", wait=2", 2000},
	    {"x=\",wait=5\"", 0},          /* inside a quoted value: not a preference */
	    {"handling=lenient", 0},
	    {"", 0},
	    {"waiting=5", 0},
	    {"wait=100", 30000},           /* capped */
	    {"wait=31", 30000},
	    {"wait=29", 29000},
	    {"wait=99999999999999999999999999999999999", 30000},
	    {"wait=9223372036854775807", 30000},
	    {"wait=abc", -1},
	    {"wait=", -1},
	    {"wait", -1},
	    {"wait=-1", -1},
	    {"wait=1.5", -1},
	    {"wait=\"5", -1},
	    {"wait=5x", -1},
	    {"wait=1, wait=9", 1000},      /* the first one counts */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(feed_prefer_wait(cases[i].prefer, 30000) == cases[i].want,
		              "Prefer: %s -> %ld, want %ld", cases[i].prefer,
		              feed_prefer_wait(cases[i].prefer, 30000), cases[i].want);
	ck_assert_int_eq(feed_prefer_wait("wait=5", 0), 0); /* WAIT_MAX_MS=0: off */
}
END_TEST

START_TEST(stream_positions_are_whole_numbers)
{
	long long v;

	ck_assert_int_eq(stream_parse_seq("0", &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(stream_parse_seq("9223372036854775807", &v), 0);
	ck_assert_int_eq(v, 9223372036854775807LL);
	ck_assert_int_eq(stream_parse_seq("9223372036854775808", &v), -1);
	ck_assert_int_eq(stream_parse_seq("-1", &v), -1);
	ck_assert_int_eq(stream_parse_seq("+1", &v), -1);
	ck_assert_int_eq(stream_parse_seq(" 1", &v), -1);
	ck_assert_int_eq(stream_parse_seq("1x", &v), -1);
	ck_assert_int_eq(stream_parse_seq("", &v), -1);
}
END_TEST

START_TEST(ring_keeps_the_newest_and_knows_what_it_lost)
{
	struct feed_ring ring;
	struct feed_record out[8];

	ck_assert_int_eq(feed_ring_init(&ring, 4, 0), 0);
	ck_assert_int_eq(feed_ring_after(&ring, 0, out, 8), 0); /* empty, nothing lost */
	ck_assert_int_eq(feed_ring_after(&ring, 5, out, 8), 0); /* ahead of the feed */
	for (int64_t s = 1; s <= 10; s++)
		feed_ring_push(&ring, &(struct feed_record){.seq = s});
	ck_assert_int_eq(ring.base, 6);
	ck_assert_int_eq(ring.last, 10);
	ck_assert_int_eq(feed_ring_after(&ring, 5, out, 8), -1); /* 6 is gone */
	ck_assert_int_eq(feed_ring_after(&ring, 0, out, 8), -1);
	ck_assert_int_eq(feed_ring_after(&ring, 6, out, 8), 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(out[i].seq, 7 + i);
	ck_assert_int_eq(feed_ring_after(&ring, 8, out, 8), 2);
	ck_assert_int_eq(out[0].seq, 9);
	ck_assert_int_eq(feed_ring_after(&ring, 6, out, 3), 3); /* at most max */
	ck_assert_int_eq(out[2].seq, 9);
	ck_assert_int_eq(feed_ring_after(&ring, 10, out, 8), 0);
	feed_ring_free(&ring);

	/* seq has gaps (rolled back transactions): positions between two
	 * records are still positions. */
	ck_assert_int_eq(feed_ring_init(&ring, 4, 1), 0);
	feed_ring_push(&ring, &(struct feed_record){.seq = 2});
	feed_ring_push(&ring, &(struct feed_record){.seq = 5});
	feed_ring_push(&ring, &(struct feed_record){.seq = 9});
	ck_assert_int_eq(feed_ring_after(&ring, 3, out, 8), 2);
	ck_assert_int_eq(out[0].seq, 5);
	ck_assert_int_eq(out[1].seq, 9);
	ck_assert_int_eq(feed_ring_after(&ring, 0, out, 8), -1);
	feed_ring_free(&ring);
}
END_TEST

/* A stream resuming far behind reads table pages while the feed keeps
 * appending to a small ring; whatever the interleaving, it sends every row
 * once, in order: the hand-over follows stream.c (page while the ring says
 * behind, then the ring). */
START_TEST(hand_over_from_pages_to_ring_has_no_gap_or_duplicate)
{
	enum { ROWS = 300, PAGE = 7 };
	static int64_t table[ROWS];
	struct feed_record out[5];

	for (int i = 0, s = 0; i < ROWS; i++)
		table[i] = s += 1 + (i % 3 == 0); /* with gaps */
	for (int step_mod = 1; step_mod <= 5; step_mod++) {
		struct feed_ring ring;
		int fed = 40, sent = 0; /* rows the feed has read; rows the stream sent */
		int64_t pos = 0;
		int64_t got[ROWS];

		ck_assert_int_eq(feed_ring_init(&ring, 8, table[fed - 1]), 0);
		for (int tick = 0; sent < ROWS && tick < 100000; tick++) {
			/* the feed reads a row now and then; commits go on meanwhile */
			if (fed < ROWS && tick % step_mod == 0)
				feed_ring_push(&ring, &(struct feed_record){.seq = table[fed++]});
			int n = feed_ring_after(&ring, pos, out, 5);
			if (n < 0) { /* behind: a page of the whole table (rows the feed
			                has not read yet are there too) */
				for (int i = 0, k = 0; i < ROWS && k < PAGE; i++)
					if (table[i] > pos)
						got[sent++] = pos = table[i], k++;
				continue;
			}
			for (int i = 0; i < n; i++)
				if (out[i].seq > pos) /* feed_ring_after gives only these */
					got[sent++] = pos = out[i].seq;
		}
		ck_assert_int_eq(sent, ROWS);
		for (int i = 0; i < ROWS; i++)
			ck_assert_int_eq(got[i], table[i]);
		feed_ring_free(&ring);
	}
}
END_TEST

/* The feed's thread against a port nobody listens on: it retries in the
 * background, and the waiters' admission and deadlines work all the same. */
static void feed_up(int max_waiters, int max_streams)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct db_params p = {.user = "u", .app_name = "test", .connect_timeout_ms = 200};
	struct feed_opts o = {.channel = "timestamp_records", .ring_size = 16,
	                      .max_waiters = max_waiters, .max_streams = max_streams};
	char err[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a free port, closed again: connections are refused */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(p.url, sizeof(p.url), "postgresql://127.0.0.1:%d/db?sslmode=disable",
	         ntohs(sa.sin_port));
	ck_assert_msg(feed_setup(&p, &o, err, sizeof(err)) == 0, "%s", err);
}

START_TEST(waiters_are_bounded_and_end_at_their_deadline)
{
	struct feed_waiter w[3];
	struct timespec deadline;
	long t0;

	feed_up(2, 1);
	ck_assert_int_eq(feed_wait_begin(&w[0], "6F1C2B5E-0000-4000-8000-000000000001"), 0);
	ck_assert_int_eq(feed_wait_begin(&w[1], "6f1c2b5e-0000-4000-8000-000000000001"), 0);
	ck_assert_int_eq(feed_wait_begin(&w[2], "6f1c2b5e-0000-4000-8000-000000000002"), -1);
	ck_assert_str_eq(w[0].id, "6f1c2b5e-0000-4000-8000-000000000001"); /* normalized */
	t0 = clock_mono_ms();
	deadline = clock_deadline(200);
	ck_assert_int_eq(feed_wait(&w[0], &deadline), FEED_TIMED_OUT);
	ck_assert_int_ge(clock_mono_ms() - t0, 200);
	feed_wait_end(&w[0]);
	ck_assert_int_eq(feed_wait_begin(&w[2], "6f1c2b5e-0000-4000-8000-000000000002"), 0);
	feed_wait_end(&w[1]);
	feed_wait_end(&w[2]);

	ck_assert_int_eq(feed_stream_begin(), 0);
	ck_assert_int_eq(feed_stream_begin(), -1);
	feed_stream_end();
	ck_assert_int_eq(feed_stream_begin(), 0);
	feed_stream_end();
	feed_shutdown();
}
END_TEST

static void *stop_soon(void *arg)
{
	(void)arg;
	nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
	feed_stopping();
	return NULL;
}

START_TEST(stopping_ends_waits_and_refuses_new_ones)
{
	struct feed_waiter w;
	struct timespec deadline = clock_deadline(60000);
	pthread_t t;
	long t0 = clock_mono_ms();

	feed_up(4, 4);
	ck_assert_int_eq(feed_wait_begin(&w, "6f1c2b5e-0000-4000-8000-000000000003"), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, stop_soon, NULL), 0);
	ck_assert_int_eq(feed_wait(&w, &deadline), FEED_STOPPING);
	ck_assert_int_lt(clock_mono_ms() - t0, 30000); /* not the 60 s deadline */
	pthread_join(t, NULL);
	feed_wait_end(&w);
	ck_assert_int_eq(feed_wait_begin(&w, "6f1c2b5e-0000-4000-8000-000000000004"), -1);
	ck_assert_int_eq(feed_stream_begin(), -1);
	feed_shutdown();
}
END_TEST

Suite *make_feed_suite(void)
{
	Suite *s = suite_create("feed");
	TCase *tc = tcase_create("prefer");

	tcase_add_test(tc, prefer_wait_follows_rfc_7240);
	tcase_add_test(tc, stream_positions_are_whole_numbers);
	suite_add_tcase(s, tc);
	tc = tcase_create("ring");
	tcase_add_test(tc, ring_keeps_the_newest_and_knows_what_it_lost);
	tcase_add_test(tc, hand_over_from_pages_to_ring_has_no_gap_or_duplicate);
	suite_add_tcase(s, tc);
	tc = tcase_create("waiters");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, waiters_are_bounded_and_end_at_their_deadline);
	tcase_add_test(tc, stopping_ends_waits_and_refuses_new_ones);
	suite_add_tcase(s, tc);
	return s;
}
