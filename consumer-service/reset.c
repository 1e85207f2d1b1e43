/* reset: moves a consumer group's committed offsets to a chosen point of
 * every partition of the topic (or of the partitions named), with the Admin
 * API, and parses the command line that asks for it. */
#include "reset.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

/* ---- the command line ---- */

/* The decimal number s[0..len), digits only (no sign, no space), at most
 * max: 0 with *out, or -1. */
static int parse_decimal(const char *s, size_t len, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "<partition>:<offset>[,...]" into req->targets. */
static int parse_targets(const char *list, struct reset_request *req, char *errstr,
                         size_t errstr_size)
{
	const char *item = list;
	int cnt = 1;

	for (const char *c = list; *c; c++)
		cnt += *c == ',';
	if (cnt > RESET_TARGETS_MAX) {
		snprintf(errstr, errstr_size, "to-offset: %d partitions named, at most %d can be",
		         cnt, RESET_TARGETS_MAX);
		return -1;
	}
	for (int i = 0; i < cnt; i++) {
		const size_t len = strcspn(item, ",");
		const char *colon = memchr(item, ':', len);
		struct reset_target *t = &req->targets[i];
		int64_t part;

		if (colon == NULL) {
			snprintf(errstr, errstr_size, "to-offset: '%.*s' is not <partition>:<offset>",
			         (int)len, item);
			return -1;
		}
		if (parse_decimal(item, (size_t)(colon - item), INT32_MAX, &part) != 0) {
			snprintf(errstr, errstr_size,
			         "to-offset: partition '%.*s' is not a number from 0 to %d",
			         (int)(colon - item), item, INT32_MAX);
			return -1;
		}
		t->partition = (int32_t)part;
		if (parse_decimal(colon + 1, len - (size_t)(colon + 1 - item), INT64_MAX,
		                  &t->offset) != 0) {
			snprintf(errstr, errstr_size,
			         "to-offset: offset '%.*s' of partition %d is not a number from 0 to %lld",
			         (int)(len - (size_t)(colon + 1 - item)), colon + 1, (int)t->partition,
			         (long long)INT64_MAX);
			return -1;
		}
		for (int j = 0; j < i; j++) {
			if (req->targets[j].partition == t->partition) {
				snprintf(errstr, errstr_size, "to-offset: partition %d is named twice",
				         (int)t->partition);
				return -1;
			}
		}
		req->target_cnt = i + 1;
		item += len + 1;
	}
	return 0;
}

/* The position text (after --reset-offsets) into req. */
static int parse_position(const char *pos, struct reset_request *req, char *errstr,
                          size_t errstr_size)
{
	char why[128];

	snprintf(req->text, sizeof(req->text), "%s", pos);
	if (strcmp(pos, "earliest") == 0) {
		req->position = RESET_EARLIEST;
	} else if (strcmp(pos, "latest") == 0) {
		req->position = RESET_LATEST;
	} else if (strncmp(pos, "to-datetime=", 12) == 0) {
		struct ts_instant t;

		req->position = RESET_TO_DATETIME;
		if (ts_parse_rfc3339(pos + 12, strlen(pos + 12), &t, why, sizeof(why)) != 0) {
			snprintf(errstr, errstr_size,
			         "to-datetime: '%.60s' is not an RFC 3339 date-time (%s)", pos + 12, why);
			return -1;
		}
		/* Record timestamps are whole milliseconds: the first at or after
		 * t is at or after t rounded up. Kafka reads a negative time as
		 * "latest" or "earliest", so an instant before 1970 asks for the
		 * first message with a timestamp, as 1970 does. */
		req->at_ms = t.sec * 1000 + (t.nsec + 999999) / 1000000;
		if (req->at_ms < 0)
			req->at_ms = 0;
	} else if (strncmp(pos, "to-offset=", 10) == 0) {
		req->position = RESET_TO_OFFSET;
		return parse_targets(pos + 10, req, errstr, errstr_size);
	} else {
		snprintf(errstr, errstr_size, "unknown position '%.60s'", pos);
		return -1;
	}
	return 0;
}

int reset_parse_args(int argc, char **argv, struct reset_request *req, char *errstr,
                     size_t errstr_size)
{
	const char *pos = NULL;
	bool asked = false;

	memset(req, 0, sizeof(*req));
	for (int i = 1; i < argc; i++)
		asked |= strcmp(argv[i], "--dry-run") == 0 || strncmp(argv[i], "--reset-offsets", 15) == 0;
	if (!asked)
		return 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--dry-run") == 0) {
			if (req->dry_run) {
				snprintf(errstr, errstr_size, "--dry-run is given twice");
				return -1;
			}
			req->dry_run = true;
		} else if (strcmp(arg, "--reset-offsets") == 0 ||
		           strncmp(arg, "--reset-offsets=", 16) == 0) {
			if (pos != NULL) {
				snprintf(errstr, errstr_size, "--reset-offsets is given twice");
				return -1;
			}
			if (arg[15] == '=')
				pos = arg + 16;
			else if (i + 1 < argc)
				pos = argv[++i];
			else
				pos = "";
			if (*pos == '\0') {
				snprintf(errstr, errstr_size, "--reset-offsets needs a position");
				return -1;
			}
		} else {
			snprintf(errstr, errstr_size, "unexpected argument '%.60s'", arg);
			return -1;
		}
	}
	if (pos == NULL) {
		snprintf(errstr, errstr_size, "--dry-run needs --reset-offsets");
		return -1;
	}
	return parse_position(pos, req, errstr, errstr_size) == 0 ? 1 : -1;
}

/* ---- the reset ---- */

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
		p->low = p->high = p->before = p->target = p->after = -1;
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
	char who[512] = "";
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
		int k = snprintf(who + used, sizeof(who) - used, "%s%s (%s at %s)", i ? ", " : ": ",
		                 rd_kafka_MemberDescription_consumer_id(m),
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

/* A list of every partition of the topic; with targets, only those the
 * plan sets, at their target. */
static rd_kafka_topic_partition_list_t *partition_list(const struct consumer_config *c,
                                                       const struct reset_result *res,
                                                       bool with_targets)
{
	rd_kafka_topic_partition_list_t *parts =
	    rd_kafka_topic_partition_list_new(res->partition_cnt);

	for (int i = 0; i < res->partition_cnt; i++) {
		const struct reset_partition *p = &res->partitions[i];
		if (with_targets && p->target < 0)
			continue;
		rd_kafka_topic_partition_list_add(parts, c->topic, p->partition)->offset =
		    with_targets ? p->target : RD_KAFKA_OFFSET_INVALID;
	}
	return parts;
}

/* What group_offsets does, and where the answer goes. */
enum offsets_call {
	OFFSETS_BEFORE, /* list the committed offsets into each partition's before */
	OFFSETS_RESET,  /* commit each partition's target; errors into its error */
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

/* Commits each partition's target. Partition errors go into the
 * partitions; returns -1 if any, or if the call failed. */
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

/* Every partition named by to-offset exists: 0, or -1 naming the first that
 * does not. */
static int check_named(const struct reset_request *req, struct reset_result *res,
                       const char *topic, char *errstr, size_t errstr_size)
{
	for (int i = 0; i < req->target_cnt; i++) {
		if (find_partition(res, req->targets[i].partition) == NULL) {
			snprintf(errstr, errstr_size,
			         "partition %d does not exist: topic %s has partitions 0 to %d",
			         (int)req->targets[i].partition, topic,
			         (int)res->partitions[res->partition_cnt - 1].partition);
			return -1;
		}
	}
	return 0;
}

/* Each partition's offset for req->at_ms (offsets for times): the first
 * offset whose timestamp is at or after it, or the end when there is none. */
static int plan_datetime(rd_kafka_t *rk, const struct consumer_config *c,
                         const struct reset_request *req, struct reset_result *res,
                         char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts = partition_list(c, res, false);
	rd_kafka_resp_err_t err;
	int rc = -1;

	for (int i = 0; i < parts->cnt; i++)
		parts->elems[i].offset = req->at_ms;
	err = rd_kafka_offsets_for_times(rk, parts, RESET_TIMEOUT_MS);
	if (err) {
		snprintf(errstr, errstr_size, "offsets for times: %s", rd_kafka_err2str(err));
		goto done;
	}
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		struct reset_partition *p = find_partition(res, tp->partition);

		if (tp->err) {
			snprintf(errstr, errstr_size, "offsets for times of partition %d: %s",
			         (int)tp->partition, rd_kafka_err2str(tp->err));
			goto done;
		}
		/* RD_KAFKA_OFFSET_END: no message at or after the instant. */
		p->target = tp->offset >= 0 ? tp->offset : p->high;
	}
	rc = 0;
done:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* Each partition's target, as req says. Returns 0, or -1 when an offset
 * named lies outside its partition's log. */
static int plan(rd_kafka_t *rk, const struct consumer_config *c, const struct reset_request *req,
                struct reset_result *res, char *errstr, size_t errstr_size)
{
	if (req->position == RESET_TO_DATETIME)
		return plan_datetime(rk, c, req, res, errstr, errstr_size);
	for (int i = 0; i < res->partition_cnt; i++) {
		struct reset_partition *p = &res->partitions[i];
		if (req->position == RESET_EARLIEST)
			p->target = p->low;
		else if (req->position == RESET_LATEST)
			p->target = p->high;
	}
	for (int i = 0; i < req->target_cnt; i++) {
		const struct reset_target *t = &req->targets[i];
		struct reset_partition *p = find_partition(res, t->partition);

		/* As kafka-consumer-groups would clamp it, but an operator who
		 * names an offset means that one: refused, not moved. */
		if (p->low >= p->high && t->offset != p->high) {
			snprintf(errstr, errstr_size,
			         "partition %d: offset %lld is outside its log, which is empty (its end, "
			         "%lld, is the one offset allowed)",
			         (int)t->partition, (long long)t->offset, (long long)p->high);
			return -1;
		}
		if (t->offset < p->low || t->offset > p->high) {
			snprintf(errstr, errstr_size,
			         "partition %d: offset %lld is outside its log, which holds offsets "
			         "%lld to %lld (the end, %lld, is allowed: replay nothing)",
			         (int)t->partition, (long long)t->offset, (long long)p->low,
			         (long long)p->high - 1, (long long)p->high);
			return -1;
		}
		p->target = t->offset;
	}
	return 0;
}

int reset_offsets(const struct consumer_config *c, const struct reset_request *req,
                  struct reset_result *res, char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = NULL;
	size_t size = sizeof(res->group);
	const char *step = "kafka client";
	char why[768];
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
	step = "to-offset";
	if (check_named(req, res, c->topic, why, sizeof(why)) != 0)
		goto failed;
	/* Also for a dry run, as kafka-consumer-groups does: the plan of a
	 * group whose members keep committing would be stale at once. */
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
	step = req->text;
	if (plan(rk, c, req, res, why, sizeof(why)) != 0)
		goto failed;
	res->planned = true;
	if (req->dry_run) {
		rc = 0;
		goto done;
	}
	step = "offset reset";
	if (alter_offsets(rk, c, res, why, sizeof(why)) != 0)
		goto failed;
	step = "check after the reset";
	if (group_offsets(rk, c, res, OFFSETS_AFTER, NULL, why, sizeof(why)) != 0)
		goto failed;
	for (int i = 0; i < res->partition_cnt; i++) {
		const struct reset_partition *p = &res->partitions[i];
		if (p->target >= 0 && p->after != p->target) {
			snprintf(why, sizeof(why),
			         "partition %d: committed offset is %lld after the reset, not %lld "
			         "(did a consumer of the group commit meanwhile?)",
			         (int)p->partition, (long long)p->after, (long long)p->target);
			goto failed;
		}
	}
	res->done = true;
	rc = 0;
	goto done;
failed:
	snprintf(errstr, errstr_size, "%s: %s", step, why);
done:
	if (rk)
		rd_kafka_destroy(rk);
	return rc;
}

/* An offset, or "none", right-aligned in width. */
static void print_offset(FILE *out, int width, int64_t off)
{
	if (off < 0)
		fprintf(out, " %*s", width, "none");
	else
		fprintf(out, " %*lld", width, (long long)off);
}

void reset_result_print(const struct reset_result *res, const struct reset_request *req,
                        const char *topic, FILE *out)
{
	long long replay = 0;
	int set = 0, failed = 0;

	if (!res->planned)
		return; /* stopped before it had a plan */
	fprintf(out, "reset-offsets%s: group %s, topic %s (%d partitions), group state %s, %s\n",
	        req->dry_run ? " (dry run)" : "", res->group, topic, res->partition_cnt,
	        res->state[0] ? res->state : "unknown", req->text);
	fprintf(out, "  %9s %12s %12s %12s %12s %12s\n", "partition", "committed", "new",
	        "log start", "log end", "to replay");
	for (int i = 0; i < res->partition_cnt; i++) {
		const struct reset_partition *p = &res->partitions[i];
		/* The offset the group's next consumer starts at: a partition
		 * without one starts at the log's start (auto.offset.reset). */
		const int64_t from = p->target >= 0 ? p->target : p->before >= 0 ? p->before : p->low;
		/* A committed offset past the end (a topic made anew) replays nothing. */
		const long long todo = p->high > from ? p->high - from : 0;

		fprintf(out, "  %9d", (int)p->partition);
		print_offset(out, 12, p->before);
		if (p->target >= 0)
			print_offset(out, 12, p->target);
		else
			fprintf(out, " %12s", "unchanged");
		fprintf(out, " %12lld %12lld %12lld", (long long)p->low, (long long)p->high, todo);
		if (p->error[0])
			fprintf(out, "  FAILED: %s", p->error);
		fputc('\n', out);
		replay += todo;
		set += p->target >= 0;
		failed += p->error[0] != '\0';
	}
	if (req->dry_run)
		fprintf(out, "reset-offsets: dry run, nothing changed: %d of %d partitions would be "
		             "set; the group's next consumer would replay %lld messages\n",
		        set, res->partition_cnt, replay);
	else if (res->done)
		fprintf(out, "reset-offsets: %d of %d partitions set; the group's next consumer "
		             "replays %lld messages\n",
		        set, res->partition_cnt, replay);
	else
		fprintf(out, "reset-offsets: FAILED (the error follows), %d of %d partitions refused; "
		             "--dry-run shows where the group's offsets stand now\n",
		        failed, set);
}

void reset_result_free(struct reset_result *res)
{
	free(res->partitions);
	res->partitions = NULL;
	res->partition_cnt = 0;
}
