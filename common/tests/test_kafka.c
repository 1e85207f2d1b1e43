/* test_kafka: the configs every topic is created with (common/kafka.c).
 * A single broker cannot create a topic of replication factor 2 or more,
 * so the min.insync.replicas of those is checked here, on the list that
 * kafka_create_topic sends; the fault suite "topic" reads the configs of
 * the topics a real broker created. */
#include <check.h>
#include <string.h>

#include "kafka.h"
#include "suites.h"

static const struct {
	int replication;
	const char *min_insync; /* min(2, replication) */
} insync[] = {
    {1, "1"}, {2, "2"}, {3, "2"}, {5, "2"}, {32, "2"},
};

/* The value of name in the list, or NULL; asserts it is there once. */
static const char *config_value(const struct kafka_topic_config *cfg, const char *name)
{
	const char *value = NULL;

	for (int i = 0; i < KAFKA_TOPIC_CONFIGS; i++) {
		if (cfg[i].name != NULL && strcmp(cfg[i].name, name) == 0) {
			ck_assert_msg(value == NULL, "%s set twice", name);
			value = cfg[i].value;
		}
	}
	return value;
}

START_TEST(min_insync_replicas_is_min_of_2_and_replication)
{
	struct kafka_topic_config cfg[KAFKA_TOPIC_CONFIGS];
	const char *v;

	memset(cfg, 0, sizeof(cfg));
	kafka_topic_configs(insync[_i].replication, cfg);
	v = config_value(cfg, "min.insync.replicas");
	ck_assert_msg(v != NULL, "replication %d: min.insync.replicas not set",
	              insync[_i].replication);
	ck_assert_msg(strcmp(v, insync[_i].min_insync) == 0,
	              "replication %d: min.insync.replicas=%s, want %s", insync[_i].replication, v,
	              insync[_i].min_insync);
}
END_TEST

START_TEST(retention_is_forever_whatever_the_replication)
{
	struct kafka_topic_config cfg[KAFKA_TOPIC_CONFIGS];
	const char *v;

	memset(cfg, 0, sizeof(cfg));
	kafka_topic_configs(insync[_i].replication, cfg);
	v = config_value(cfg, "retention.ms");
	ck_assert_msg(v != NULL && strcmp(v, "-1") == 0, "replication %d: retention.ms=%s",
	              insync[_i].replication, v ? v : "(unset)");
}
END_TEST

Suite *make_kafka_suite(void)
{
	Suite *s = suite_create("kafka");
	TCase *tc = tcase_create("topic_configs");

	tcase_add_loop_test(tc, min_insync_replicas_is_min_of_2_and_replication, 0, TABLE_LEN(insync));
	tcase_add_loop_test(tc, retention_is_forever_whatever_the_replication, 0, TABLE_LEN(insync));
	suite_add_tcase(s, tc);
	return s;
}
