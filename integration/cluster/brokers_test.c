/* brokers_test: the Kafka cluster (3 nodes, RF 3, min.insync.replicas=2)
 * loses brokers under a steady stream of POSTs, every answer recorded:
 *   leader_killed  the leader of partition 0 SIGKILLed: a new leader is
 *                  elected and POSTs succeed again by themselves;
 *   two_down       two of three brokers SIGKILLed: min.insync.replicas can
 *                  not be met (nor a KRaft quorum formed), so every POST
 *                  answers 503 until one broker returns, then 200 again;
 *   wiped          a broker's data directory lost and the broker started
 *                  empty: it copies its partitions back (it is in their
 *                  ISRs again), and then another broker is killed, so that
 *                  its copy is needed: the topic still holds every message.
 * Each time: every answer is a 200 or a 503, and every ticket answered 200
 * is exactly one row (a 503 may still be stored: allowed). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "cluster.h"

#define ELECTION_MS 30000 /* fencing after the 6 s session timeout, then the election */
#define RECOVERY_MS 60000
#define RUN_200 40        /* answers in a row: with 6 partitions, all of them served */
#define OUTAGE_MS 10000   /* two publish timeouts (PUBLISH_TIMEOUT_MS 5000) */
#define WIPED_MS 2000
#define ISR_MS 90000

static void setup(void)
{
	memset(&cluster_load, 0, sizeof(cluster_load));
}

START_TEST(leader_killed)
{
	char action[32];
	int leader, now_leader;
	long killed, elected;

	cluster_start_load();
	leader = cluster_leader(0);
	ck_assert_msg(leader > 0, "partition 0 of %s has no leader", stack.topic);
	snprintf(action, sizeof(action), "kill-node %d", leader);
	killed = clock_mono_ms();
	cluster_script("kafka.sh", action);
	while ((now_leader = cluster_leader(0)) < 0 || now_leader == leader) {
		ck_assert_msg(clock_mono_ms() - killed < ELECTION_MS,
		              "no new leader of partition 0 %d s after node %d was killed (leader: %d)",
		              ELECTION_MS / 1000, leader, now_leader);
		proc_sleep_ms(250);
	}
	elected = clock_mono_ms();
	printf("  leader killed: node %d led partition 0; node %d leads it %.1f s after SIGKILL\n",
	       leader, now_leader, fault_secs(elected - killed));
	cluster_check_answers("leader killed", 0, 0,
	                      cluster_await_200s(killed, RUN_200, RECOVERY_MS, "leader killed"));
}
END_TEST

START_TEST(two_down)
{
	struct http_resp resp = {0};
	char url[256];
	long down, starting, took;

	cluster_start_load();
	cluster_script("kafka.sh", "kill-node 2");
	cluster_script("kafka.sh", "kill-node 3");
	down = clock_mono_ms();
	proc_sleep_ms(OUTAGE_MS);
	/* The metadata still names a leader for every partition (no quorum
	 * to change it): /ready must say so from the failed publishes. */
	stack_url(url, sizeof(url), STACK_COMMAND, "/ready");
	ck_assert_msg(http_get(url, NULL, &resp) == 0 && resp.status == 503,
	              "command-service /ready answered %ld (%s) with two of three brokers down",
	              resp.status, resp.body ? resp.body : "");
	printf("  two down: command-service /ready 503: %s\n", resp.body ? resp.body : "");
	http_resp_clear(&resp);
	starting = clock_mono_ms();
	took = cluster_script("kafka.sh", "start-node 2");
	printf("  two down: node 2 back (registered) %.1f s after its start\n", fault_secs(took));
	cluster_check_answers("two down", down, starting,
	                      cluster_await_200s(starting, RUN_200, RECOVERY_MS, "two down"));
	ck_assert_msg(http_get(url, NULL, &resp) == 0 && resp.status == 200,
	              "command-service /ready answered %ld (%s) once POSTs succeed again",
	              resp.status, resp.body ? resp.body : "");
	http_resp_clear(&resp);
}
END_TEST

START_TEST(wiped)
{
	const long t0 = clock_mono_ms();
	int64_t before = 0, after = -1;
	char errstr[512], action[32];
	long started, back;
	int other, led = 0;

	cluster_start_load();
	cluster_script("kafka.sh", "wipe-node 2");
	proc_sleep_ms(WIPED_MS);
	started = clock_mono_ms();
	cluster_script("kafka.sh", "start-node 2");
	/* Back in every partition's ISR: it has copied each up to the high watermark. */
	for (int p = 0; p < CLUSTER_PARTITIONS; p++) {
		while (!cluster_in_isr(p, 2)) {
			ck_assert_msg(clock_mono_ms() - started < ISR_MS,
			              "node 2 (wiped) not in the ISR of partition %d %d s after its start", p,
			              ISR_MS / 1000);
			proc_sleep_ms(250);
		}
	}
	back = clock_mono_ms();
	printf("  wiped: node 2 started empty, in the ISR of all %d partitions %.1f s later\n",
	       CLUSTER_PARTITIONS, fault_secs(back - started));
	cluster_check_answers("wiped, before the second kill", 0, 0,
	                      cluster_await_200s(t0, RUN_200, RECOVERY_MS, "wiped"));

	/* Now the copy is needed: the leader of partition 0 (or node 1) goes. */
	ck_assert_msg(topic_watermark_sum(stack.broker, stack.topic, &before, errstr,
	                                  sizeof(errstr)) == 0,
	              "%s", errstr);
	other = cluster_leader(0);
	other = other > 0 && other != 2 ? other : 1;
	snprintf(action, sizeof(action), "kill-node %d", other);
	cluster_script("kafka.sh", action);
	started = clock_mono_ms();
	for (;;) {
		bool all = true;
		led = 0;
		for (int p = 0; p < CLUSTER_PARTITIONS; p++) {
			int l = cluster_leader(p);
			all = all && l > 0 && l != other;
			led += l == 2;
		}
		if (all && topic_watermark_sum(stack.broker, stack.topic, &after, errstr,
		                               sizeof(errstr)) == 0)
			break;
		ck_assert_msg(clock_mono_ms() - started < ELECTION_MS,
		              "partitions without a leader %d s after node %d was killed", ELECTION_MS / 1000,
		              other);
		proc_sleep_ms(250);
	}
	printf("  wiped: node %d killed; node 2 (restored from the others) now leads %d of %d "
	       "partitions; the topic holds %lld messages, as before the kill\n",
	       other, led, CLUSTER_PARTITIONS, (long long)after);
	ck_assert_msg(after == before, "the topic held %lld messages before node %d was killed, "
	              "%lld after", (long long)before, other, (long long)after);
}
END_TEST

/* A case of its own for each test, so that one runs alone
 * (cluster-tests brokers wiped). */
static void add_case(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, cluster_teardown);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

Suite *make_brokers_suite(void)
{
	Suite *s = suite_create("brokers");

	add_case(s, "leader_killed", leader_killed);
	add_case(s, "two_down", two_down);
	add_case(s, "wiped", wiped);
	return s;
}
