/* reset: moves a consumer group's committed offsets back to the earliest
 * offset of every partition of the topic, with the Admin API. */
#include "reset.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

static struct reset_partition *find_partition(struct reset_result *res, int32_t id)
{
	for (int i = 0; i < res->partition_cnt; i++)
		if (res->partitions[i].partition == id)
			return &res->partitions[i];
	return NULL;
}

static int by_partition(const void *a, const void *b)
{
	const struct reset_partition *x = a, *y = b;
	return (x->partition > y->partition) - (x->partition < y->partition);
}

/* Fills res->partitions from the topic's metadata. */
static int load_partitions(rd_kafka_t *rk, const struct consumer_config *c,
                           struct reset_result *res, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md;
	const struct rd_kafka_metadata_topic *mt;
	int rc = -1;

	if (kafka_topic_metadata(rk, c->topic, RESET_TIMEOUT_MS, &md, errstr, errstr_size) != 0)
		return -1;
	mt = &md->topics[0];
	res->partitions = calloc((size_t)mt->partition_cnt, sizeof(*res->partitions));
	if (res->partitions == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto done;
	}
	res->partition_cnt = mt->partition_cnt;
	for (int i = 0; i < mt->partition_cnt; i++) {
		struct reset_partition *p = &res->partitions[i];
		p->partition = mt->partitions[i].id;
		p->low = p->high = p->before = p->after = -1;
	}
	qsort(res->partitions, (size_t)res->partition_cnt, sizeof(*res->partitions),
	      by_partition);
	rc = 0;
done:
	rd_kafka_metadata_destroy(md);
	return rc;
}

/* Describes the group: 0 when it is idle (no members, not rebalancing),
 * else -1 with who is in it. */
static int check_idle(rd_kafka_t *rk, struct reset_result *res, char *errstr, size_t errstr_size)
{
	const char *groups[1] = {res->group};
	const rd_kafka_ConsumerGroupDescription_t **descs, *d;
	const rd_kafka_error_t *gerr;
	rd_kafka_consumer_group_state_t state;
	struct kafka_admin a;
	char who[256] = "";
	size_t n, used = 0;
	int rc = -1;

	kafka_admin_begin(&a, rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, RESET_TIMEOUT_MS);
	rd_kafka_DescribeConsumerGroups(rk, groups, 1, a.opts, a.q);
	if (kafka_admin_wait(&a, "describe group", errstr, errstr_size) != 0)
		goto done;
	descs = rd_kafka_DescribeConsumerGroups_result_groups(
	    rd_kafka_event_DescribeConsumerGroups_result(a.ev), &n);
	if (n != 1) {
		snprintf(errstr, errstr_size, "describe group %s: %zu answers", res->group, n);
		goto done;
	}
	d = descs[0];
	gerr = rd_kafka_ConsumerGroupDescription_error(d);
	if (gerr != NULL) {
		snprintf(errstr, errstr_size, "describe group %s: %s", res->group,
		         rd_kafka_error_string(gerr));
		goto done;
	}
	state = rd_kafka_ConsumerGroupDescription_state(d);
	snprintf(res->state, sizeof(res->state), "%s", rd_kafka_consumer_group_state_name(state));
	res->members = (int)rd_kafka_ConsumerGroupDescription_member_count(d);
	/* Empty, or Dead (no such group yet); Unknown from an older broker is let
	 * through when there are no members: the broker still refuses the commit
	 * for a group that has any (UNKNOWN_MEMBER_ID). */
	if (res->members == 0 && state != RD_KAFKA_CONSUMER_GROUP_STATE_STABLE &&
	    state != RD_KAFKA_CONSUMER_GROUP_STATE_PREPARING_REBALANCE &&
	    state != RD_KAFKA_CONSUMER_GROUP_STATE_COMPLETING_REBALANCE) {
		rc = 0;
		goto done;
	}
	for (int i = 0; i < res->members && used < sizeof(who); i++) {
		const rd_kafka_MemberDescription_t *m =
		    rd_kafka_ConsumerGroupDescription_member(d, (size_t)i);
		int k = snprintf(who + used, sizeof(who) - used, "%s%s at %s", i ? ", " : ": ",
		                 rd_kafka_MemberDescription_client_id(m),
		                 rd_kafka_MemberDescription_host(m));
		used += k > 0 ? (size_t)k : 0;
	}
	snprintf(errstr, errstr_size,
	         "group %s is not idle (state %s, %d member%s%s): stop every consumer of the "
	         "group, then run this again",
	         res->group, res->state, res->members, res->members == 1 ? "" : "s", who);
done:
	kafka_admin_end(&a);
	return rc;
}

/* A list of every partition of the topic; with offsets, at their low mark. */
static rd_kafka_topic_partition_list_t *partition_list(const struct consumer_config *c,
                                                       const struct reset_result *res,
                                                       bool with_offsets)
{
	rd_kafka_topic_partition_list_t *parts =
	    rd_kafka_topic_partition_list_new(res->partition_cnt);

	for (int i = 0; i < res->partition_cnt; i++) {
		const struct reset_partition *p = &res->partitions[i];
		rd_kafka_topic_partition_t *tp =
		    rd_kafka_topic_partition_list_add(parts, c->topic, p->partition);
		if (with_offsets)
			tp->offset = p->low;
	}
	return parts;
}

/* What group_offsets does, and where the answer goes. */
enum offsets_call {
	OFFSETS_BEFORE, /* list the committed offsets into each partition's before */
	OFFSETS_RESET,  /* commit each partition's low mark; errors into its error */
	OFFSETS_AFTER,  /* list them again, into after */
};

/* Lists or alters the group's committed offsets (one group per call, as
 * librdkafka 2.0.2 wants) and records the answer per partition: -1 where
 * the group has no offset. *busy (if not NULL) counts partitions refused
 * because the group has members. Returns 0, or -1 with errstr when the call
 * itself failed. */
static int group_offsets(rd_kafka_t *rk, const struct consumer_config *c, struct reset_result *res,
                         enum offsets_call call, int *busy, char *errstr, size_t errstr_size)
{
	const bool alter = call == OFFSETS_RESET;
	const char *what = alter ? "alter committed offsets" : "list committed offsets";
	rd_kafka_topic_partition_list_t *parts = partition_list(c, res, alter);
	const rd_kafka_group_result_t **gres;
	const rd_kafka_topic_partition_list_t *got;
	struct kafka_admin a;
	size_t n;
	int rc = -1;

	kafka_admin_begin(&a, rk,
	                  alter ? RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS
	                        : RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
	                  RESET_TIMEOUT_MS);
	/* The calls copy their requests. */
	if (alter) {
		rd_kafka_AlterConsumerGroupOffsets_t *req =
		    rd_kafka_AlterConsumerGroupOffsets_new(res->group, parts);
		rd_kafka_AlterConsumerGroupOffsets(rk, &req, 1, a.opts, a.q);
		rd_kafka_AlterConsumerGroupOffsets_destroy(req);
	} else {
		rd_kafka_ListConsumerGroupOffsets_t *req =
		    rd_kafka_ListConsumerGroupOffsets_new(res->group, parts);
		rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, a.opts, a.q);
		rd_kafka_ListConsumerGroupOffsets_destroy(req);
	}
	if (kafka_admin_wait(&a, what, errstr, errstr_size) != 0)
		goto done;
	if (alter)
		gres = rd_kafka_AlterConsumerGroupOffsets_result_groups(
		    rd_kafka_event_AlterConsumerGroupOffsets_result(a.ev), &n);
	else
		gres = rd_kafka_ListConsumerGroupOffsets_result_groups(
		    rd_kafka_event_ListConsumerGroupOffsets_result(a.ev), &n);
	if (kafka_group_result(gres, n, what, res->group, &got, errstr, errstr_size) != 0)
		goto done;
	for (int i = 0; got != NULL && i < got->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &got->elems[i];
		struct reset_partition *p = find_partition(res, tp->partition);
		const int64_t off = tp->err || tp->offset < 0 ? -1 : tp->offset;

		if (p == NULL || strcmp(tp->topic, c->topic) != 0)
			continue;
		if (call == OFFSETS_BEFORE)
			p->before = off;
		else if (call == OFFSETS_AFTER)
			p->after = off;
		else if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(p->error, sizeof(p->error), "%s", rd_kafka_err2str(tp->err));
			if (busy != NULL)
				*busy += kafka_group_busy(tp->err);
		}
	}
	rc = 0;
done:
	kafka_admin_end(&a);
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* Commits each partition's low mark for the group. Partition errors go
 * into the partitions; returns -1 if any, or if the call failed. */
static int alter_offsets(rd_kafka_t *rk, const struct consumer_config *c, struct reset_result *res,
                         char *errstr, size_t errstr_size)
{
	int failed = 0, busy = 0;

	if (group_offsets(rk, c, res, OFFSETS_RESET, &busy, errstr, errstr_size) != 0)
		return -1;
	for (int i = 0; i < res->partition_cnt; i++)
		failed += res->partitions[i].error[0] != '\0';
	if (failed == 0)
		return 0;
	snprintf(errstr, errstr_size, "%d of %d partitions were not reset%s", failed,
	         res->partition_cnt,
	         busy ? ": the broker says the group has active members; stop every "
	                "consumer of the group, then run this again"
	              : "");
	return -1;
}

int reset_offsets_earliest(const struct consumer_config *c, struct reset_result *res,
                           char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = NULL;
	size_t size = sizeof(res->group);
	const char *step = "kafka client";
	char why[512];
	int rc = -1;

	memset(res, 0, sizeof(*res));
	snprintf(res->group, sizeof(res->group), "%s", c->group);
	/* The same group.id the consumer ends up with: KAFKA_PROPERTIES may
	 * override it there too. The handle never subscribes, so it never
	 * joins the group it resets. */
	const char *const defaults[] = {"group.id", c->group, "client.id", "consumer-service-reset",
	                                NULL};
	rk = kafka_new(RD_KAFKA_CONSUMER, c->brokers, defaults, c->properties, NULL, NULL, why,
	               sizeof(why));
	if (rk == NULL)
		goto failed;
	if (rd_kafka_conf_get(rd_kafka_conf(rk), "group.id", res->group, &size) != RD_KAFKA_CONF_OK) {
		snprintf(why, sizeof(why), "group.id: cannot read it back");
		goto failed;
	}

	step = "topic metadata";
	if (load_partitions(rk, c, res, why, sizeof(why)) != 0)
		goto failed;
	step = "group check";
	if (check_idle(rk, res, why, sizeof(why)) != 0)
		goto failed;
	step = "watermarks";
	for (int i = 0; i < res->partition_cnt; i++) {
		struct reset_partition *p = &res->partitions[i];
		if (kafka_watermarks(rk, c->topic, p->partition, &p->low, &p->high, RESET_TIMEOUT_MS,
		                     why, sizeof(why)) != 0)
			goto failed;
	}
	step = "committed offsets";
	if (group_offsets(rk, c, res, OFFSETS_BEFORE, NULL, why, sizeof(why)) != 0)
		goto failed;
	step = "offset reset";
	if (alter_offsets(rk, c, res, why, sizeof(why)) != 0)
		goto failed;
	step = "check after the reset";
	if (group_offsets(rk, c, res, OFFSETS_AFTER, NULL, why, sizeof(why)) != 0)
		goto failed;
	for (int i = 0; i < res->partition_cnt; i++) {
		const struct reset_partition *p = &res->partitions[i];
		if (p->after != p->low) {
			snprintf(why, sizeof(why),
			         "partition %d: committed offset is %lld after the reset, not %lld "
			         "(did a consumer of the group commit meanwhile?)",
			         (int)p->partition, (long long)p->after, (long long)p->low);
			goto failed;
		}
	}
	rc = 0;
	goto done;
failed:
	snprintf(errstr, errstr_size, "%s: %s", step, why);
done:
	if (rk)
		rd_kafka_destroy(rk);
	return rc;
}

static void print_offset(FILE *out, int64_t off)
{
	if (off < 0)
		fputs("none", out);
	else
		fprintf(out, "%lld", (long long)off);
}

void reset_result_print(const struct reset_result *res, const char *topic, FILE *out)
{
	long long replay = 0;
	int done = 0;

	for (int i = 0; i < res->partition_cnt; i++)
		if (res->partitions[i].low < 0)
			return; /* stopped before it learnt the log's offsets */
	if (res->partition_cnt == 0)
		return;
	fprintf(out, "reset-offsets: group %s, topic %s (%d partitions), group state %s\n",
	        res->group, topic, res->partition_cnt, res->state[0] ? res->state : "unknown");
	for (int i = 0; i < res->partition_cnt; i++) {
		const struct reset_partition *p = &res->partitions[i];
		fprintf(out, "  partition %d: committed ", (int)p->partition);
		print_offset(out, p->before);
		fputs(" -> ", out);
		print_offset(out, p->error[0] ? p->before : p->after >= 0 ? p->after : p->low);
		fprintf(out, "  (log %lld..%lld)", (long long)p->low, (long long)p->high);
		if (p->error[0])
			fprintf(out, "  FAILED: %s", p->error);
		else if (p->after == p->low)
			done++, replay += p->high - p->low;
		fputc('\n', out);
	}
	fprintf(out, "reset-offsets: %d of %d partitions at their earliest offset", done,
	        res->partition_cnt);
	if (done == res->partition_cnt)
		fprintf(out, "; the group's next consumer replays %lld messages", replay);
	fputc('\n', out);
}

void reset_result_free(struct reset_result *res)
{
	free(res->partitions);
	res->partitions = NULL;
	res->partition_cnt = 0;
}
