/* verify: compares the table with the topic, message by message: the ids
 * of the topic (decoded by the consumer's own codec) in a hash set, then the
 * table streamed through a cursor and looked up in it; then the counts per
 * minute with the table's rows, in the same snapshot. */
#include "verify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "db.h"
#include "kafka.h"
#include "msg.h"

#define TABLE "timestamp_records"
#define COUNTS "timestamp_counts"
#define STR2(x) #x
#define STR(x) STR2(x)

/* One distinct id of the topic, and the row the consumer writes for the
 * first message of it (the one that lands: later ones conflict). */
struct entry {
	uuid_t id;
	bool used, in_table;
	int32_t partition;
	int64_t offset;
	int64_t event_us, created_us; /* microseconds, as PostgreSQL keeps them */
};

/* Open addressing, linear probing, at most three quarters full: 48-byte
 * entries, so 64 to 128 bytes per id. */
struct idset {
	struct entry *e;
	size_t cap, n;
};

struct vpart {
	int32_t partition;
	int64_t low, high; /* what is read: [low, high) as of the start */
	bool done;
	long long messages, decodable, undecodable, repeated, with_row;
};

/* What the check found: counts and the first VERIFY_SHOW of each kind. */
enum kind {
	K_UNDECODABLE, K_MISSING, K_EXTRA, K_DIFFERENT,
	K_MINUTE_DIFFERENT, K_MINUTE_MISSING, K_MINUTE_EXTRA, /* the counts (same order as in SQL) */
	K_COUNT
};
struct findings {
	long long n[K_COUNT];
	char show[K_COUNT][VERIFY_SHOW][256];
};

static const char *const kind_title[K_COUNT] = {
    "undecodable messages (the consumer dead-letters them: not expected in the table)",
    "ids with a message and no row (MISSING from the table)",
    "rows with no message in the topic (NOT IN THE TOPIC)",
    "rows that differ from their message (DIFFERENT)",
    "minutes counted otherwise than the table's rows (COUNT DIFFERS)",
    "minutes with rows and no count (COUNT MISSING)",
    "minutes counted with no rows (COUNT EXTRA)",
};

static void note(struct findings *f, enum kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(struct findings *f, enum kind k, const char *fmt, ...)
{
	va_list ap;

	if (f->n[k] < VERIFY_SHOW) {
		va_start(ap, fmt);
		vsnprintf(f->show[k][f->n[k]], sizeof(f->show[k][0]), fmt, ap);
		va_end(ap);
	}
	f->n[k]++;
}

/* FNV-1a: ids need not be random (v1 and v5 ids are ids too). */
static size_t id_hash(const uuid_t id)
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 16; i++)
		h = (h ^ id[i]) * 1099511628211ULL;
	return (size_t)h;
}

/* The slot of id: its entry, or the free slot where it would go. */
static struct entry *idset_slot(const struct idset *s, const uuid_t id)
{
	size_t i = id_hash(id) & (s->cap - 1);

	while (s->e[i].used && memcmp(s->e[i].id, id, sizeof(uuid_t)) != 0)
		i = (i + 1) & (s->cap - 1);
	return &s->e[i];
}

/* Doubles the table. It starts small, so that the few ids of a test's
 * topic go through growth as a large topic's do. Returns 0, or -1 without
 * memory. */
static int idset_grow(struct idset *s)
{
	struct idset bigger = {.cap = s->cap ? s->cap * 2 : 8, .n = s->n};

	bigger.e = calloc(bigger.cap, sizeof(*bigger.e));
	if (bigger.e == NULL)
		return -1;
	for (size_t i = 0; i < s->cap; i++)
		if (s->e[i].used)
			*idset_slot(&bigger, s->e[i].id) = s->e[i];
	free(s->e);
	*s = bigger;
	return 0;
}

static int64_t micros(struct ts_instant t)
{
	return t.sec * 1000000 + t.nsec / 1000;
}

/* Microseconds since the epoch as RFC 3339, into buf[TS_TEXT_MAX]. */
static const char *micros_text(int64_t us, char *buf)
{
	struct ts_instant t = {.sec = us / 1000000, .nsec = (int32_t)(us % 1000000) * 1000};

	if (t.nsec < 0) {
		t.sec--;
		t.nsec += 1000000000;
	}
	ts_format(&t, 6, buf);
	return buf;
}

/* One message of p: decoded as the consumer decodes it, its id added. */
static int take_message(const rd_kafka_message_t *rkm, struct vpart *p, struct idset *ids,
                        struct findings *f, char *errstr, size_t errstr_size)
{
	struct msg_command m;
	struct ts_instant created;
	char cid[UID_TEXT_SIZE], why[256];
	struct entry *e;
	uuid_t id;

	p->messages++;
	if (msg_decode_kafka(rkm, &m, &created, cid, why, sizeof(why)) != 0) {
		p->undecodable++;
		note(f, K_UNDECODABLE, "partition %d offset %" PRId64 ": %s", (int)p->partition,
		     rkm->offset, why);
		return 0;
	}
	p->decodable++;
	if (uuid_parse(m.command_id, id) != 0) { /* msg_decode checked it already */
		snprintf(errstr, errstr_size, "command_id %s: not a UUID", m.command_id);
		return -1;
	}
	if (4 * (ids->n + 1) > 3 * ids->cap && idset_grow(ids) != 0) {
		snprintf(errstr, errstr_size, "out of memory at %zu distinct ids", ids->n);
		return -1;
	}
	e = idset_slot(ids, id);
	if (e->used) {
		p->repeated++;
		return 0;
	}
	*e = (struct entry){.used = true, .partition = p->partition, .offset = rkm->offset,
	                    .event_us = micros(m.event_time), .created_us = micros(created)};
	memcpy(e->id, id, sizeof(uuid_t));
	ids->n++;
	return 0;
}

static struct vpart *find_part(struct vpart *parts, int n, int32_t partition)
{
	if (partition >= 0 && partition < n && parts[partition].partition == partition)
		return &parts[partition];
	for (int i = 0; i < n; i++)
		if (parts[i].partition == partition)
			return &parts[i];
	return NULL;
}

/* Reads [low, high) of every partition into ids. */
static int read_topic(const struct consumer_config *c, struct vpart **parts_out, int *n_out,
                      struct idset *ids, struct findings *f, char *errstr, size_t errstr_size)
{
	/* A group id only because librdkafka's consumer poll wants one: the
	 * handle assigns, never subscribes (joins no group) and never commits,
	 * whatever KAFKA_PROPERTIES say. */
	const char *const fixed[] = {"group.id", "consumer-service-verify",
	                             "enable.auto.commit", "false",
	                             "enable.auto.offset.store", "false",
	                             "enable.partition.eof", "true", NULL};
	char prefetch[16];
	/* The consumer's own bound of what librdkafka fetches ahead. */
	const char *const defaults[] = {"client.id", "consumer-service-verify",
	                                "queued.max.messages.kbytes", prefetch, NULL};
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *assign = NULL;
	struct vpart *parts = NULL;
	rd_kafka_resp_err_t err;
	const char *step = "kafka client";
	char why[512];
	int n = 0, left = 0, rc = -1;
	long progress;
	rd_kafka_t *rk;

	snprintf(prefetch, sizeof(prefetch), "%d", c->prefetch_kb);
	rk = kafka_new(RD_KAFKA_CONSUMER, c->brokers, defaults, c->properties, fixed, NULL, why,
	               sizeof(why));
	if (rk == NULL)
		goto failed;
	step = "topic metadata";
	if (kafka_topic_metadata(rk, c->topic, VERIFY_KAFKA_TIMEOUT_MS, &md, why, sizeof(why)) != 0)
		goto failed;
	n = md->topics[0].partition_cnt;
	parts = calloc((size_t)n, sizeof(*parts));
	assign = rd_kafka_topic_partition_list_new(n);
	if (parts == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto failed;
	}
	step = "watermarks";
	for (int i = 0; i < n; i++) {
		struct vpart *p = &parts[i];

		p->partition = md->topics[0].partitions[i].id;
		if (kafka_watermarks(rk, c->topic, p->partition, &p->low, &p->high,
		                     VERIFY_KAFKA_TIMEOUT_MS, why, sizeof(why)) != 0)
			goto failed;
		p->done = p->low >= p->high;
		if (!p->done) {
			rd_kafka_topic_partition_list_add(assign, c->topic, p->partition)->offset = p->low;
			left++;
		}
	}
	step = "assign";
	if (left > 0 && (err = rd_kafka_assign(rk, assign)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(why, sizeof(why), "%s", rd_kafka_err2str(err));
		goto failed;
	}
	step = "read";
	progress = clock_mono_ms();
	while (left > 0) {
		rd_kafka_message_t *rkm;
		struct vpart *p;

		/* Checked on every turn: errors may keep coming without a message. */
		if (clock_mono_ms() - progress >= VERIFY_STALL_MS) {
			snprintf(why, sizeof(why), "no message for %d ms with %d partitions unread "
			         "to their end", VERIFY_STALL_MS, left);
			goto failed;
		}
		if ((rkm = rd_kafka_consumer_poll(rk, 500)) == NULL)
			continue;
		p = find_part(parts, n, rkm->partition);
		if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			/* A broker away is waited for (VERIFY_STALL_MS); anything
			 * else would come again. */
			const bool transient = rkm->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
			                       rkm->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN;
			snprintf(why, sizeof(why), "%s", rd_kafka_message_errstr(rkm));
			rd_kafka_message_destroy(rkm);
			if (transient)
				continue;
			goto failed;
		}
		if (p != NULL && !p->done && rkm->offset < p->high) {
			progress = clock_mono_ms();
			if (!rkm->err && take_message(rkm, p, ids, f, why, sizeof(why)) != 0) {
				rd_kafka_message_destroy(rkm);
				goto failed;
			}
		}
		/* The last message before the end, or the end itself (an EOF's
		 * offset is the next one). */
		if (p != NULL && !p->done &&
		    (rkm->err ? rkm->offset >= p->high : rkm->offset + 1 >= p->high)) {
			p->done = true;
			left--;
		}
		rd_kafka_message_destroy(rkm);
	}
	rc = 0;
	goto done;
failed:
	snprintf(errstr, errstr_size, "topic %s: %s: %s", c->topic, step, why);
done:
	if (md)
		rd_kafka_metadata_destroy(md);
	if (assign)
		rd_kafka_topic_partition_list_destroy(assign);
	/* Nothing to commit and no group to leave. */
	if (rk)
		rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	*parts_out = parts;
	*n_out = n;
	return rc;
}

/* One row of the table against the topic's ids. */
static void take_row(const PGresult *res, int row, struct idset *ids, struct findings *f,
                     long long *rows)
{
	const char *text = PQgetvalue(res, row, 0);
	const int64_t event_us = strtoll(PQgetvalue(res, row, 1), NULL, 10);
	const int64_t created_us = strtoll(PQgetvalue(res, row, 2), NULL, 10);
	char a[TS_TEXT_MAX], b[TS_TEXT_MAX];
	struct entry *e = NULL;
	uuid_t id;

	(*rows)++;
	if (ids->cap > 0 && uuid_parse(text, id) == 0)
		e = idset_slot(ids, id);
	if (e == NULL || !e->used) {
		note(f, K_EXTRA, "%s", text);
		return;
	}
	e->in_table = true;
	if (e->event_us != event_us)
		note(f, K_DIFFERENT, "%s: event_timestamp %s in the table, %s in its message "
		     "(partition %d offset %" PRId64 ")", text, micros_text(event_us, a),
		     micros_text(e->event_us, b), (int)e->partition, e->offset);
	else if (e->created_us != created_us)
		note(f, K_DIFFERENT, "%s: created_at %s in the table, %s in its message "
		     "(partition %d offset %" PRId64 ")", text, micros_text(created_us, a),
		     micros_text(e->created_us, b), (int)e->partition, e->offset);
}

/* Streams every row of the table through take_row, on conn (which stays
 * the caller's). */
static int read_table(const struct consumer_config *c, PGconn *conn, struct idset *ids,
                      struct findings *f, long long *rows, char *errstr, size_t errstr_size)
{
	/* extract(epoch ...) is numeric since PostgreSQL 14: exact. */
	static const char open_sql[] =
	    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
	    "DECLARE verify_rows NO SCROLL CURSOR FOR "
	    "SELECT id::text, (extract(epoch FROM event_timestamp) * 1000000)::bigint, "
	    "(extract(epoch FROM created_at) * 1000000)::bigint FROM " TABLE;
	char fetch_sql[64], why[512] = "";
	const char *step = "open a cursor";
	struct timespec deadline;
	PGresult *res = NULL;
	int rc = -1;

	snprintf(fetch_sql, sizeof(fetch_sql), "FETCH FORWARD %d FROM verify_rows",
	         VERIFY_FETCH_ROWS);
	deadline = db_statement_deadline(&c->db);
	res = db_exec(conn, open_sql, &deadline, why, sizeof(why));
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		goto failed;
	step = "fetch";
	for (;;) {
		PQclear(res);
		deadline = db_statement_deadline(&c->db);
		res = db_exec(conn, fetch_sql, &deadline, why, sizeof(why));
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3)
			goto failed;
		if (PQntuples(res) == 0)
			break;
		for (int i = 0; i < PQntuples(res); i++)
			take_row(res, i, ids, f, rows);
	}
	rc = 0;
	goto done;
failed:
	if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
		db_error_line(PQresultErrorMessage(res), why, sizeof(why));
	else if (res != NULL)
		snprintf(why, sizeof(why), "unexpected answer");
	snprintf(errstr, errstr_size, "table %s: %s: %s", TABLE, step, why);
done:
	PQclear(res);
	return rc;
}

/* The counts per minute against the rows of each minute (what the
 * consumer adds up, as a GROUP BY), on conn in read_table's transaction:
 * the same snapshot. The differing minutes of each kind are counted in
 * SQL, the first VERIFY_SHOW of each kind fetched; *minutes and *counted
 * get the counts table's size. */
static int read_counts(PGconn *conn, struct findings *f,
                       long long *minutes, long long *counted, char *errstr, size_t errstr_size)
{
	static const char sql[] =
	    "SET LOCAL statement_timeout = " STR(VERIFY_COUNTS_TIMEOUT_MS) "; "
	    "WITH d AS (SELECT minute, c.count AS counted, r.count AS rows, "
	    "CASE WHEN r.count IS NULL THEN 2 WHEN c.count IS NULL THEN 1 ELSE 0 END AS kind "
	    "FROM " COUNTS " c FULL JOIN (SELECT date_trunc('minute', event_timestamp, 'UTC') "
	    "AS minute, count(*) FROM " TABLE " GROUP BY 1) r USING (minute) "
	    "WHERE c.count IS DISTINCT FROM r.count), "
	    "k AS (SELECT *, count(*) OVER w AS n, row_number() OVER (w ORDER BY minute) AS i "
	    "FROM d WINDOW w AS (PARTITION BY kind)) "
	    "SELECT kind, n, i, to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
	    "coalesce(counted, 0), coalesce(rows, 0) FROM k WHERE i <= " STR(VERIFY_SHOW) " "
	    "UNION ALL SELECT -1, count(*), 0, NULL, coalesce(sum(count), 0), 0 FROM " COUNTS;
	char why[512] = "";
	struct timespec deadline = clock_deadline(VERIFY_COUNTS_TIMEOUT_MS + DB_ANSWER_GRACE_MS);
	PGresult *res = db_exec(conn, sql, &deadline, why, sizeof(why));
	int rc = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 6) {
		if (res != NULL)
			db_error_line(PQresultErrorMessage(res), why, sizeof(why));
		snprintf(errstr, errstr_size, "table %s: %s", COUNTS, why);
		goto done;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const int kind = atoi(PQgetvalue(res, i, 0));
		const long long n = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		const int at = atoi(PQgetvalue(res, i, 2)) - 1;
		const long long had = strtoll(PQgetvalue(res, i, 4), NULL, 10);
		const long long rows = strtoll(PQgetvalue(res, i, 5), NULL, 10);
		enum kind k;

		if (kind < 0) {
			*minutes = n;
			*counted = had;
			continue;
		}
		if (kind > 2 || at < 0 || at >= VERIFY_SHOW)
			continue; /* not asked for */
		k = (enum kind)(K_MINUTE_DIFFERENT + kind);
		f->n[k] = n;
		snprintf(f->show[k][at], sizeof(f->show[k][at]), "%s: %lld counted, %lld rows",
		         PQgetvalue(res, i, 3), had, rows);
	}
	rc = 0;
done:
	PQclear(res);
	return rc;
}

/* Whether the table and the topic, or the counts and the table, differ. */
static bool rows_differ(const struct findings *f)
{
	return f->n[K_MISSING] + f->n[K_EXTRA] + f->n[K_DIFFERENT] > 0;
}

static bool counts_differ(const struct findings *f)
{
	return f->n[K_MINUTE_DIFFERENT] + f->n[K_MINUTE_MISSING] + f->n[K_MINUTE_EXTRA] > 0;
}

static void print_report(const struct consumer_config *c, const struct vpart *parts, int n,
                         const struct idset *ids, const struct findings *f, long long rows,
                         long long minutes, long long counted, FILE *out)
{
	long long messages = 0, repeated = 0, with_row = 0;

	for (int i = 0; i < n; i++) {
		messages += parts[i].messages;
		repeated += parts[i].repeated;
		with_row += parts[i].with_row;
	}
	fprintf(out, "verify: topic %s (%d partitions, %lld messages up to the end offsets of "
	             "the start) against table %s (%lld rows)\n",
	        c->topic, n, messages, TABLE, rows);
	for (int i = 0; i < n; i++) {
		const struct vpart *p = &parts[i];
		fprintf(out, "  partition %d: %lld messages (log start %lld, end %lld), %lld decodable, "
		             "%lld ids with a row; %lld undecodable, %lld repeated ids\n",
		        (int)p->partition, p->messages, (long long)p->low, (long long)p->high,
		        p->decodable, p->with_row, p->undecodable, p->repeated);
	}
	fprintf(out, "verify: %zu distinct ids in the topic (%lld repeated messages count once), "
	             "%lld of them with a row\n",
	        ids->n, repeated, with_row);
	for (int k = 0; k < K_COUNT; k++) {
		if (f->n[k] == 0)
			continue;
		fprintf(out, "verify: %lld %s%s\n", f->n[k], kind_title[k],
		        f->n[k] > VERIFY_SHOW ? ", for example:" : ":");
		for (long long i = 0; i < f->n[k] && i < VERIFY_SHOW; i++)
			fprintf(out, "    %s\n", f->show[k][i]);
	}
	if (!rows_differ(f))
		fprintf(out, "verify: table and topic agree\n");
	else
		fprintf(out, "verify: table and topic DIFFER: %lld missing from the table, %lld not "
		             "in the topic, %lld different\n",
		        f->n[K_MISSING], f->n[K_EXTRA], f->n[K_DIFFERENT]);
	if (!counts_differ(f))
		fprintf(out, "verify: counts and table agree (%s: %lld minutes, %lld rows counted)\n",
		        COUNTS, minutes, counted);
	else
		fprintf(out, "verify: counts and table DIFFER (%s: %lld minutes, %lld rows counted): "
		             "%lld minutes counted otherwise, %lld with rows and no count, %lld counted "
		             "with no rows\n",
		        COUNTS, minutes, counted, f->n[K_MINUTE_DIFFERENT], f->n[K_MINUTE_MISSING],
		        f->n[K_MINUTE_EXTRA]);
}

enum verify_result verify_run(const struct consumer_config *c, FILE *out, char *errstr,
                              size_t errstr_size)
{
	struct findings *f = calloc(1, sizeof(*f));
	struct idset ids = {0};
	struct vpart *parts = NULL;
	enum verify_result rc = VERIFY_FAILED;
	PGconn *conn = NULL;
	char why[512];
	long long rows = 0, minutes = 0, counted = 0;
	int n = 0;

	if (f == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return VERIFY_FAILED;
	}
	/* The database first: a check that cannot read the table is not worth
	 * reading a large topic for. */
	if ((conn = db_connect(&c->db, why, sizeof(why))) == NULL) {
		snprintf(errstr, errstr_size, "table %s: connect: %s", TABLE, why);
		goto done;
	}
	if (read_topic(c, &parts, &n, &ids, f, errstr, errstr_size) != 0 ||
	    read_table(c, conn, &ids, f, &rows, errstr, errstr_size) != 0 ||
	    read_counts(conn, f, &minutes, &counted, errstr, errstr_size) != 0)
		goto done;
	for (size_t i = 0; i < ids.cap; i++) {
		const struct entry *e = &ids.e[i];
		char text[UID_TEXT_SIZE];

		if (!e->used)
			continue;
		if (e->in_table) {
			find_part(parts, n, e->partition)->with_row++;
			continue;
		}
		uuid_unparse_lower(e->id, text);
		note(f, K_MISSING, "%s (partition %d offset %" PRId64 ")", text, (int)e->partition,
		     e->offset);
	}
	print_report(c, parts, n, &ids, f, rows, minutes, counted, out);
	rc = rows_differ(f) || counts_differ(f) ? VERIFY_DIFFER : VERIFY_AGREE;
done:
	PQfinish(conn); /* read only: ending the session ends the transaction */
	free(ids.e);
	free(parts);
	free(f);
	return rc;
}
