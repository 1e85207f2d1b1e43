/* topic_test: the topics the services create have the configs the design
 * asks for, as the broker describes them: retention.ms=-1 and
 * min.insync.replicas=min(2, replication factor) set on the topic itself
 * (not the broker's default, which would let the leader alone satisfy
 * acks=all once the replication factor is over 1). The command service
 * creates the topic, the consumer its dead-letter topic. A single broker
 * has replication factor 1, so 1 here; common/tests/test_kafka.c checks
 * the list for higher factors. */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "fault.h"
#include "faults.h"

static void teardown(void)
{
	fault_teardown(NULL, 0);
}

static void check_config(const char *topic, const char *name, const char *want)
{
	char value[64], errstr[512];
	int source = -1;

	ck_assert_msg(topic_config(stack.broker, topic, name, value, sizeof(value), &source, errstr,
	                           sizeof(errstr)) == 0, "%s", errstr);
	printf("  %s: %s=%s (%s)\n", topic, name, value,
	       rd_kafka_ConfigSource_name((rd_kafka_ConfigSource_t)source));
	ck_assert_msg(source == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG,
	              "%s: %s is not set on the topic (source %s)", topic, name,
	              rd_kafka_ConfigSource_name((rd_kafka_ConfigSource_t)source));
	ck_assert_msg(strcmp(value, want) == 0, "%s: %s=%s, want %s", topic, name, value, want);
}

START_TEST(topics_are_created_with_min_insync_replicas)
{
	/* The run's start made the command service create the topic; the
	 * consumer creates the dead-letter topic when it starts. */
	fault_start(STACK_CONSUMER, NULL);
	check_config(stack.topic, "min.insync.replicas", "1");
	check_config(stack.topic, "retention.ms", "-1");
	check_config(stack.dlq_topic, "min.insync.replicas", "1");
	check_config(stack.dlq_topic, "retention.ms", "-1");
}
END_TEST

Suite *make_topic_suite(void)
{
	Suite *s = suite_create("topic");
	TCase *tc = tcase_create("configs");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, topics_are_created_with_min_insync_replicas);
	suite_add_tcase(s, tc);
	return s;
}
