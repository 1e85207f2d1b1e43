/* rebuild: the blue-green rebuild (`consumer-service --rebuild`).
 *
 * One rebuild at a time: it holds a session-level advisory lock on its
 * control connection for the whole run. Generation N replays the topic
 * into timestamp_records_g<N> (and its counts per minute into
 * timestamp_counts_g<N>) as group <KAFKA_GROUP_ID>.rebuild-g<N> with
 * the live consumer's own loop (consumer.c: batches, dead letters, retries,
 * offsets committed once the rows are durable), so a rebuild that died is
 * resumed from its group's committed offsets. Its row in timestamp_rebuilds
 * carries the progress, which the live consumer serves.
 *
 * Caught up, it switches in one transaction on the control connection:
 * LOCK TABLE timestamp_records, timestamp_counts IN EXCLUSIVE MODE stops
 * the live consumer's INSERTs (not the readers' SELECTs); every message the
 * live consumer can have written is then below the topic's end offsets, and
 * the rebuild replays up to them; then the four tables and their indexes
 * are renamed (switch_sql) and the row says live.
 * The replay during the switch goes through the consumer's own connection
 * in short transactions of its own: they commit before the renames do, and
 * the switch's COMMIT (synchronous) flushes the WAL past them. Statements
 * that waited on the lock resolve the name timestamp_records again when they
 * go on (PostgreSQL re-parses after a rename), so the live consumer and
 * query-service follow the switch as they are. */
#include "rebuild.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "sink.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define KAFKA_WAIT_MS 5000
#define LOG_EVERY_S 5
#define RATE_SAMPLES 6 /* one a second: the rate over the last 5 s */

enum outcome { RB_RUNNING, RB_LIVE, RB_FAILED };

struct part {
	int32_t id;
	int64_t low, end; /* the log's first offset, and its end when the run started */
	int64_t pos;      /* the next offset to replay (position, or committed at start) */
	int64_t now_end;  /* its end when last asked */
};

static atomic_bool stop, signalled, stalled;
static struct consumer_config cfg; /* the consumer's, with the rebuild's group and table */
static PGconn *conn;               /* control: the lock, the state row, the switch */
static int generation;
static char gen_text[16], table[64], group[512], old_table[64];
static char counts[NAMEDATALEN_MAX], old_counts[NAMEDATALEN_MAX]; /* their counts tables */
static struct part *parts;
static int n_parts;
static int64_t total, done, replayed; /* replayed: beyond the start's end too */
static double rate, last_tick, last_log, next_switch, started;
static struct {
	double t;
	int64_t replayed;
} samples[RATE_SAMPLES];
static int n_samples, attempts;
static enum outcome outcome;
static bool row_final;    /* the row must not be touched any more */
static bool reload_parts; /* the topic's partitions changed: parts_load again */
static char error[512];
static double switch_ms;

static void nap_ms(long ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L}, NULL);
}

static void on_signal(int sig)
{
	if (sig == SIGALRM)
		atomic_store(&stalled, true);
	else
		atomic_store(&signalled, true);
	atomic_store(&stop, true);
}

/* ---- the control connection ---- */

static void ctl_close(void)
{
	PQfinish(conn);
	conn = NULL;
}

/* Runs sql (with n text parameters vals, if n > 0) on the control
 * connection. Returns 0 when the result has status want (into *out, the
 * caller's to clear, if out is not NULL), else -1 with errstr. */
static int ctl(const char *sql, int n, const char *const *vals, ExecStatusType want,
               PGresult **out, char *errstr, size_t errstr_size)
{
	struct timespec deadline = db_statement_deadline(&cfg.db);
	PGresult *res;

	if (conn == NULL) {
		snprintf(errstr, errstr_size, "not connected");
		return -1;
	}
	res = n > 0 ? db_exec_params(conn, sql, n, vals, &deadline, errstr, errstr_size)
	            : db_exec(conn, sql, &deadline, errstr, errstr_size);
	if (PQresultStatus(res) != want) {
		if (res != NULL)
			db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		PQclear(res);
		/* A connection that failed is not to be trusted (db_exec). */
		if (res == NULL || PQstatus(conn) != CONNECTION_OK)
			ctl_close();
		return -1;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/* Opens the control connection, applies the schema and takes the rebuild
 * lock. Returns 0; 1 when another rebuild holds the lock (errstr says
 * which); -1 with errstr. */
static int ctl_connect(char *errstr, size_t errstr_size)
{
	PGresult *res = NULL;
	char why[256];
	const char *step = "connect";
	bool locked;

	conn = db_connect(&cfg.db, why, sizeof(why));
	if (conn == NULL)
		goto failed;
	step = "apply schema";
	if (sink_schema(conn, &cfg.db, why, sizeof(why)) != 0)
		goto failed;
	step = "rebuild lock";
	if (ctl("SELECT pg_try_advisory_lock(" STR(REBUILD_LOCK_KEY) ")", 0, NULL, PGRES_TUPLES_OK,
	        &res, why, sizeof(why)) != 0)
		goto failed;
	locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (locked)
		return 0;
	step = "who holds the rebuild lock";
	if (ctl("SELECT max(generation) FROM timestamp_rebuilds "
	        "WHERE state IN ('replaying', 'switching')",
	        0, NULL, PGRES_TUPLES_OK, &res, why, sizeof(why)) != 0)
		goto failed;
	snprintf(errstr, errstr_size, "another rebuild is running (generation %s)",
	         PQgetisnull(res, 0, 0) ? "not numbered yet" : PQgetvalue(res, 0, 0));
	PQclear(res);
	ctl_close();
	return 1;
failed:
	snprintf(errstr, errstr_size, "%s: %s", step, why);
	ctl_close();
	return -1;
}

/* ctl_connect, retried with capped backoff until it works, another rebuild
 * holds the lock, or stop. Returns as ctl_connect (-1 when stopped). */
static int ctl_connect_retry(char *errstr, size_t errstr_size)
{
	int backoff = 100, rc;

	while ((rc = ctl_connect(errstr, errstr_size)) < 0 && !atomic_load(&stop)) {
		log_warn("database: %s; retrying in %d ms", errstr, backoff);
		for (int waited = 0; waited < backoff && !atomic_load(&stop); waited += 50)
			nap_ms(50);
		backoff = backoff * 2 > cfg.retry_max_ms ? cfg.retry_max_ms : backoff * 2;
	}
	return rc;
}

/* Updates the row of this generation with sql, whose $1 is the generation
 * and whose further parameters are vals[0..n). Only while the row is
 * replaying or switching: a row that went live or failed stays as it is.
 * Returns 0, or -1 with errstr. */
static int row_update(const char *sql, int n, const char *const *vals, char *errstr,
                      size_t errstr_size)
{
	const char *all[6] = {gen_text};

	if (row_final) {
		snprintf(errstr, errstr_size, "the row is final");
		return -1;
	}
	for (int i = 0; i < n && i < 5; i++)
		all[i + 1] = vals[i];
	return ctl(sql, n + 1, all, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
}

/* ---- the generation ---- */

static void names(void)
{
	snprintf(gen_text, sizeof(gen_text), "%d", generation);
	snprintf(table, sizeof(table), SINK_TABLE "_g%d", generation);
	snprintf(old_table, sizeof(old_table), SINK_TABLE "_old_g%d", generation);
	snprintf(old_counts, sizeof(old_counts), SINK_COUNTS_TABLE "_old_g%d", generation);
}

/* The generation's counts table (sink_counts_table of its table), created
 * LIKE the live one when it is missing -- with the counts of the rows its
 * table holds already (a rebuild begun by a version without counts), in
 * the same statement. Returns 0, or -1 with errstr. */
static int counts_create(char *errstr, size_t errstr_size)
{
	char *q_counts = NULL, *q_table = NULL, *lit = NULL, *sql = NULL;
	size_t len;
	int rc = -1;

	if (sink_counts_table(table, counts, sizeof(counts)) != 0) {
		snprintf(errstr, errstr_size, "no counts table for %s", table);
		return -1;
	}
	q_counts = PQescapeIdentifier(conn, counts, strlen(counts));
	q_table = PQescapeIdentifier(conn, table, strlen(table));
	lit = PQescapeLiteral(conn, counts, strlen(counts));
	len = 512 + 2 * NAMEDATALEN_MAX * 4;
	if (q_counts == NULL || q_table == NULL || lit == NULL || (sql = malloc(len)) == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto done;
	}
	snprintf(sql, len,
	         "DO $$ BEGIN IF to_regclass(%s) IS NULL THEN "
	         "CREATE TABLE %s (LIKE " SINK_COUNTS_TABLE " INCLUDING ALL); "
	         "INSERT INTO %s (minute, count) SELECT date_trunc('minute', event_timestamp, 'UTC'), "
	         "count(*) FROM %s GROUP BY 1; END IF; END $$",
	         lit, q_counts, q_counts, q_table);
	rc = ctl(sql, 0, NULL, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
done:
	PQfreemem(q_counts);
	PQfreemem(q_table);
	PQfreemem(lit);
	free(sql);
	return rc;
}

/* Resumes the rebuild a crash left behind (replaying, or switching: a
 * switch commits together with the state live, so one that still says
 * switching did not happen), or starts generation max + 1 with its table.
 * Returns 0, or -1 with errstr. */
static int rebuild_begin(char *errstr, size_t errstr_size)
{
	PGresult *res = NULL;
	char why[256], sql[256], *quoted = NULL;
	const char *step = "find a rebuild to resume", *vals[3];
	bool resumed;

	if (ctl("SELECT generation, table_name, group_id FROM timestamp_rebuilds "
	        "WHERE state IN ('replaying', 'switching') AND to_regclass(table_name) IS NOT NULL "
	        "ORDER BY generation DESC LIMIT 1",
	        0, NULL, PGRES_TUPLES_OK, &res, why, sizeof(why)) != 0)
		goto failed;
	resumed = PQntuples(res) == 1;
	if (resumed) {
		generation = atoi(PQgetvalue(res, 0, 0));
		names();
		snprintf(table, sizeof(table), "%s", PQgetvalue(res, 0, 1));
		snprintf(group, sizeof(group), "%s", PQgetvalue(res, 0, 2));
		/* A generation begun before its counts table existed gets one. */
		step = "the generation's counts table";
		PQclear(res);
		res = NULL;
		if (counts_create(why, sizeof(why)) != 0)
			goto failed;
	}
	PQclear(res);
	res = NULL;
	/* A row whose table is gone cannot go on: it failed. */
	step = "close rebuilds whose table is gone";
	if (ctl("UPDATE timestamp_rebuilds SET state = 'failed', updated_at = now(), "
	        "error = 'its table was gone when a rebuild started' "
	        "WHERE state IN ('replaying', 'switching') AND to_regclass(table_name) IS NULL",
	        0, NULL, PGRES_COMMAND_OK, NULL, why, sizeof(why)) != 0)
		goto failed;
	if (resumed) {
		step = "resume";
		if (row_update("UPDATE timestamp_rebuilds SET state = 'replaying', error = NULL, "
		               "updated_at = now() WHERE generation = $1",
		               0, NULL, why, sizeof(why)) != 0)
			goto failed;
		log_info("rebuild g%d: resuming into %s as group %s", generation, table, group);
		return 0;
	}

	step = "new generation";
	if (ctl("SELECT coalesce(max(generation), 0) + 1 FROM timestamp_rebuilds", 0, NULL,
	        PGRES_TUPLES_OK, &res, why, sizeof(why)) != 0)
		goto failed;
	generation = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	names();
	snprintf(group, sizeof(group), "%s.rebuild-g%d", cfg.group, generation);
	quoted = PQescapeIdentifier(conn, table, strlen(table));
	if (quoted == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto failed;
	}
	snprintf(sql, sizeof(sql), "CREATE TABLE %s (LIKE " SINK_TABLE " INCLUDING ALL)", quoted);
	vals[0] = gen_text, vals[1] = table, vals[2] = group;
	step = "create the generation's tables";
	if (ctl("BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL, why, sizeof(why)) != 0 ||
	    ctl("INSERT INTO timestamp_rebuilds (generation, table_name, group_id, state) "
	        "VALUES ($1, $2, $3, 'replaying')",
	        3, vals, PGRES_COMMAND_OK, NULL, why, sizeof(why)) != 0 ||
	    ctl(sql, 0, NULL, PGRES_COMMAND_OK, NULL, why, sizeof(why)) != 0 ||
	    counts_create(why, sizeof(why)) != 0 ||
	    ctl("COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, why, sizeof(why)) != 0) {
		char ignored[64];
		if (ctl("ROLLBACK", 0, NULL, PGRES_COMMAND_OK, NULL, ignored, sizeof(ignored)) != 0)
			log_debug("rollback: %s", ignored);
		goto failed;
	}
	PQfreemem(quoted);
	log_info("rebuild g%d: new tables %s and %s, group %s", generation, table, counts, group);
	return 0;
failed:
	PQfreemem(quoted);
	snprintf(errstr, errstr_size, "%s: %s", step, why);
	return -1;
}

/* ---- partitions and progress ---- */

static rd_kafka_topic_partition_list_t *part_list(void)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n_parts);

	for (int i = 0; i < n_parts; i++)
		rd_kafka_topic_partition_list_add(list, cfg.topic, parts[i].id);
	return list;
}

/* The time left until a clock_mono_s() deadline, in ms for a Kafka call;
 * at least 1. */
static int ms_left(double until)
{
	const double ms = (until - clock_mono_s()) * 1000;
	return ms < 1 ? 1 : ms > KAFKA_WAIT_MS ? KAFKA_WAIT_MS : (int)ms;
}

/* Asks every partition's end now (into now_end), by until (a
 * clock_mono_s() time): one ListOffsets request per leader for them all
 * (the timestamp -1 asks for the end), not one per partition, which counts
 * while the live table is locked. Returns 0, or -1 with errstr. */
static int ends_now(double until, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *list = part_list();
	rd_kafka_resp_err_t err;

	for (int i = 0; i < n_parts; i++)
		list->elems[i].offset = RD_KAFKA_OFFSET_END;
	err = rd_kafka_offsets_for_times(consumer_handle(), list, ms_left(until));
	for (int i = 0; !err && i < n_parts; i++) {
		if (list->elems[i].err)
			err = list->elems[i].err;
		else if (list->elems[i].offset < 0)
			err = RD_KAFKA_RESP_ERR__NO_OFFSET;
		else
			parts[i].now_end = list->elems[i].offset;
	}
	rd_kafka_topic_partition_list_destroy(list);
	if (err) {
		snprintf(errstr, errstr_size, "end offsets of %s: %s", cfg.topic, rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* The topic's partitions, their watermarks (the ends are the run's total)
 * and where the group left off. Returns 0, or -1 with errstr. */
static int parts_load(char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t err;

	if (kafka_topic_metadata(consumer_handle(), cfg.topic, KAFKA_WAIT_MS, &md, errstr,
	                         errstr_size) != 0)
		return -1;
	free(parts);
	n_parts = md->topics[0].partition_cnt;
	parts = calloc((size_t)n_parts, sizeof(*parts));
	for (int i = 0; parts != NULL && i < n_parts; i++)
		parts[i].id = md->topics[0].partitions[i].id;
	rd_kafka_metadata_destroy(md);
	if (parts == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	total = 0;
	for (int i = 0; i < n_parts; i++) {
		if (kafka_watermarks(consumer_handle(), cfg.topic, parts[i].id, &parts[i].low,
		                     &parts[i].end, KAFKA_WAIT_MS, errstr, errstr_size) != 0)
			return -1;
		parts[i].now_end = parts[i].end;
		total += parts[i].end - parts[i].low;
	}
	list = part_list();
	err = rd_kafka_committed(consumer_handle(), list, KAFKA_WAIT_MS);
	for (int i = 0; !err && i < n_parts; i++) {
		const int64_t off = list->elems[i].offset;
		parts[i].pos = off > parts[i].low ? off : parts[i].low;
	}
	rd_kafka_topic_partition_list_destroy(list);
	if (err) {
		snprintf(errstr, errstr_size, "committed offsets of %.200s: %s", group,
		         rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* Whether the topic has other partitions than at the start (some were
 * added): then their messages must be waited for too, and parts_load is
 * run again. With why; asks by until (a clock_mono_s() time). */
static bool partitions_changed(double until, char *why, size_t why_size)
{
	const struct rd_kafka_metadata *md;
	int now_cnt;

	if (kafka_topic_metadata(consumer_handle(), cfg.topic, ms_left(until), &md, why,
	                         why_size) != 0)
		return true;
	now_cnt = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	if (now_cnt == n_parts)
		return false;
	snprintf(why, why_size, "the topic has %d partitions now, %d when the rebuild started",
	         now_cnt, n_parts);
	reload_parts = true;
	return true;
}

/* Where the consumer stands: what it has taken (and so written, once
 * consumer_step returned) of each partition. A partition not fetched yet
 * since its assignment keeps the last position known. */
static void positions_update(void)
{
	rd_kafka_topic_partition_list_t *list = part_list();

	if (rd_kafka_position(consumer_handle(), list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < n_parts; i++)
			if (list->elems[i].offset >= 0)
				parts[i].pos = list->elems[i].offset;
	}
	rd_kafka_topic_partition_list_destroy(list);
}

/* done (of the run's total) and the rate over the last few seconds. */
static void progress_update(double now)
{
	done = replayed = 0;
	for (int i = 0; i < n_parts; i++) {
		const struct part *p = &parts[i];
		done += (p->pos < p->end ? p->pos : p->end) - p->low;
		replayed += p->pos - p->low;
	}
	if (n_samples == RATE_SAMPLES) {
		memmove(samples, samples + 1, sizeof(samples[0]) * (RATE_SAMPLES - 1));
		n_samples--;
	}
	samples[n_samples].t = now;
	samples[n_samples++].replayed = replayed;
	rate = n_samples > 1 && now > samples[0].t
	           ? (double)(replayed - samples[0].replayed) / (now - samples[0].t)
	           : 0;
	if (rate < 0) /* partitions read again after a lost session */
		rate = 0;
}

/* The largest distance of a partition from its end (now_end). */
static int64_t lag_max(void)
{
	int64_t lag = 0;

	for (int i = 0; i < n_parts; i++)
		if (parts[i].now_end - parts[i].pos > lag)
			lag = parts[i].now_end - parts[i].pos;
	return lag;
}

static void progress_log(void)
{
	const double pct = total > 0 ? 100.0 * (double)done / (double)total : 100.0;
	char eta[32] = "unknown";

	if (done >= total)
		snprintf(eta, sizeof(eta), "0 s");
	else if (rate > 0)
		snprintf(eta, sizeof(eta), "%.0f s", (double)(total - done) / rate);
	log_info("rebuild g%d: %" PRId64 " of %" PRId64 " messages (%.1f %%), %.0f/s, ETA %s",
	         generation, done, total, pct, rate, eta);
}

/* Writes the progress into the row. Returns 0, or -1 with errstr. */
static int progress_report(char *errstr, size_t errstr_size)
{
	char d[24], r[32], t[24];
	const char *vals[] = {d, r, t};

	snprintf(d, sizeof(d), "%" PRId64, done);
	snprintf(r, sizeof(r), "%.1f", rate);
	snprintf(t, sizeof(t), "%" PRId64, total);
	return row_update("UPDATE timestamp_rebuilds SET records_done = $2, rate = $3, "
	                  "records_total = $4, updated_at = now() "
	                  "WHERE generation = $1 AND state IN ('replaying', 'switching')",
	                  3, vals, errstr, errstr_size);
}

/* ---- the switch ---- */

/* Whether every partition has been replayed up to its now_end. */
static bool ends_reached(void)
{
	return lag_max() <= 0;
}

/* The renames of the switch, in one DO block: for the records and the
 * counts table each, the live table becomes the old one and the
 * generation's the live one, and so do their indexes (a primary key's
 * constraint goes with its index): the live table's are looked up and
 * renamed to old-style names (timestamp_records_seq_key to
 * timestamp_records_old_g3_seq_key), and the generation's index defined
 * alike (LIKE ... INCLUDING ALL made one of each) takes the name the live
 * one had -- so schema.sql, which creates an index only when its name is
 * missing, finds its names on the live table after the switch, and still
 * after the old tables are dropped (no index made twice). A live index with no twin fails the switch rather than losing
 * the index. Then 'switch:<n>' on the records' channel, n the largest seq
 * of the new live table: a rebuild numbers the rows' seq afresh, and
 * query-service's feed must know, and read on after n -- the live
 * consumer's INSERTs, waiting on the lock, come after it. */
static const char switch_sql[] =
    "DO $$ DECLARE t record; i record; n bigint; BEGIN "
    "FOR t IN SELECT * FROM (VALUES (%1$s, %2$s, %3$s), (%4$s, %5$s, %6$s)) "
    "AS v(live, gen, old) LOOP "
    "FOR i IN WITH ix AS (SELECT x.indrelid AS rel, x.indexrelid AS idx, c.relname AS name, "
    "row_number() OVER (PARTITION BY x.indrelid, x.indisprimary, d.def ORDER BY x.indexrelid) "
    "AS k, x.indisprimary AS prim, d.def FROM pg_index x JOIN pg_class c "
    "ON c.oid = x.indexrelid, regexp_replace(pg_get_indexdef(x.indexrelid), "
    "' INDEX \\S+ ON \\S+ ', ' ') AS d(def) "
    "WHERE x.indrelid IN (t.live::regclass, t.gen::regclass)) "
    "SELECT l.idx AS live_idx, l.name, n.idx AS gen_idx FROM ix l LEFT JOIN ix n "
    "ON n.rel = t.gen::regclass AND (n.prim, n.def, n.k) = (l.prim, l.def, l.k) "
    "WHERE l.rel = t.live::regclass LOOP "
    "IF i.gen_idx IS NULL THEN RAISE EXCEPTION '%% has no index like %% of %%', "
    "t.gen, i.name, t.live; END IF; "
    "EXECUTE format('ALTER INDEX %%s RENAME TO %%I', i.live_idx::regclass, "
    "CASE WHEN starts_with(i.name, t.live) THEN t.old || substr(i.name, length(t.live) + 1) "
    "ELSE i.name || substr(t.old, length(t.live) + 1) END); "
    "EXECUTE format('ALTER INDEX %%s RENAME TO %%I', i.gen_idx::regclass, i.name); "
    "END LOOP; "
    "EXECUTE format('ALTER TABLE %%I RENAME TO %%I', t.live, t.old); "
    "EXECUTE format('ALTER TABLE %%I RENAME TO %%I', t.gen, t.live); "
    "END LOOP; "
    "EXECUTE format('SELECT coalesce(max(seq), 0) FROM %%I', %1$s) INTO n; "
    "PERFORM pg_notify(%1$s, 'switch:' || n); END $$";

/* switch_sql for this generation into sql. Returns 0, or -1 with errstr. */
static int rename_sql(char *sql, size_t size, char *errstr, size_t errstr_size)
{
	const char *names[] = {SINK_TABLE, table, old_table, SINK_COUNTS_TABLE, counts, old_counts};
	char *q[6] = {NULL};
	int rc = -1, n;

	for (int i = 0; i < 6; i++)
		if ((q[i] = PQescapeLiteral(conn, names[i], strlen(names[i]))) == NULL) {
			snprintf(errstr, errstr_size, "out of memory");
			goto done;
		}
	n = snprintf(sql, size, switch_sql, q[0], q[1], q[2], q[3], q[4], q[5]);
	if (n < 0 || (size_t)n >= size)
		snprintf(errstr, errstr_size, "the switch's statement does not fit");
	else
		rc = 0;
done:
	for (int i = 0; i < 6; i++)
		PQfreemem(q[i]);
	return rc;
}

/* One attempt at the switch. Sets outcome RB_LIVE when it committed; else
 * rolls back, notes why in the row, and gives up (RB_FAILED) after
 * REBUILD_SWITCH_ATTEMPTS. */
static void switch_try(void)
{
	char why[384] = "", sql[4096], ms[32], d[24], r[32];
	const char *vals[] = {old_table, ms, d, r};
	const char *step = "state switching";
	double locked_at = 0, until;
	bool sent_begin = false;
	PGresult *res = NULL;

	attempts++;
	log_info("rebuild g%d: caught up; switching (attempt %d of %d)", generation, attempts,
	         REBUILD_SWITCH_ATTEMPTS);
	if (row_update("UPDATE timestamp_rebuilds SET state = 'switching', updated_at = now() "
	               "WHERE generation = $1",
	               0, NULL, why, sizeof(why)) != 0)
		goto failed;
	/* Readers' SELECTs go on under EXCLUSIVE; the live consumer's INSERTs
	 * wait, and so every message it can have written is below the end
	 * offsets asked next. Its statement locks the records, then the
	 * counts: so does this, or each could hold what the other waits for. */
	step = "lock " SINK_TABLE " and " SINK_COUNTS_TABLE;
	sent_begin = true;
	if (ctl("BEGIN; SET LOCAL lock_timeout = '" STR(REBUILD_LOCK_TIMEOUT_MS) "ms'; "
	        "LOCK TABLE " SINK_TABLE ", " SINK_COUNTS_TABLE " IN EXCLUSIVE MODE",
	        0, NULL, PGRES_COMMAND_OK, NULL, why, sizeof(why)) != 0)
		goto failed;
	locked_at = clock_mono_s();
	/* The end offsets and the replay share one budget: the live consumer
	 * waits all that time. */
	until = locked_at + REBUILD_SWITCH_REPLAY_MS / 1000.0;
	step = "end offsets";
	if (ends_now(until, why, sizeof(why)) != 0 || partitions_changed(until, why, sizeof(why)))
		goto failed;
	step = "replay to the end offsets";
	positions_update();
	while (!ends_reached() && !atomic_load(&stop) && clock_mono_s() < until) {
		consumer_step(&stop, 20);
		positions_update();
	}
	if (!ends_reached()) {
		snprintf(why, sizeof(why), "%s within %d ms (%" PRId64 " messages short)",
		         atomic_load(&stop) ? "stopped" : "not replayed", REBUILD_SWITCH_REPLAY_MS,
		         lag_max());
		goto failed;
	}
	step = "rename the tables and their indexes";
	if (rename_sql(sql, sizeof(sql), why, sizeof(why)) != 0 ||
	    ctl(sql, 0, NULL, PGRES_COMMAND_OK, NULL, why, sizeof(why)) != 0)
		goto failed;
	progress_update(clock_mono_s());
	switch_ms = (clock_mono_s() - locked_at) * 1000;
	snprintf(ms, sizeof(ms), "%.1f", switch_ms);
	snprintf(d, sizeof(d), "%" PRId64, done);
	snprintf(r, sizeof(r), "%.1f", rate);
	step = "state live";
	if (row_update("UPDATE timestamp_rebuilds SET state = 'live', switched_at = now(), "
	               "updated_at = now(), old_table = $2, switch_ms = $3, records_done = $4, "
	               "rate = $5, error = NULL WHERE generation = $1",
	               4, vals, why, sizeof(why)) != 0)
		goto failed;
	step = "commit";
	if (ctl("COMMIT", 0, NULL, PGRES_COMMAND_OK, &res, why, sizeof(why)) != 0) {
		if (conn == NULL) {
			/* No answer: it may have committed or not, and only the
			 * row can say which. */
			snprintf(error, sizeof(error),
			         "the switch's COMMIT got no answer (%s): whether generation %d is live, "
			         "its row in timestamp_rebuilds says",
			         why, generation);
			row_final = true;
			outcome = RB_FAILED;
			return;
		}
		goto failed;
	}
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		snprintf(why, sizeof(why), "the transaction was rolled back");
		PQclear(res);
		goto failed;
	}
	PQclear(res);
	row_final = true;
	outcome = RB_LIVE;
	return;
failed:
	if (sent_begin && conn != NULL) {
		char ignored[64];
		if (ctl("ROLLBACK", 0, NULL, PGRES_COMMAND_OK, NULL, ignored, sizeof(ignored)) != 0)
			log_debug("rollback: %s", ignored);
	}
	snprintf(error, sizeof(error), "switch attempt %d of %d: %s: %s", attempts,
	         REBUILD_SWITCH_ATTEMPTS, step, why);
	log_warn("rebuild g%d: %s", generation, error);
	vals[0] = error;
	if (row_update("UPDATE timestamp_rebuilds SET state = 'replaying', error = $2, "
	               "updated_at = now() WHERE generation = $1",
	               1, vals, why, sizeof(why)) != 0)
		log_warn("rebuild g%d: state row: %s", generation, why);
	if (attempts >= REBUILD_SWITCH_ATTEMPTS)
		outcome = RB_FAILED;
	if (reload_parts && parts_load(why, sizeof(why)) == 0) {
		reload_parts = false;
		log_info("rebuild g%d: now %d partitions, %" PRId64 " messages", generation, n_parts,
		         total);
	}
	next_switch = clock_mono_s() + REBUILD_SWITCH_PAUSE_MS / 1000.0;
}

/* ---- the loop ---- */

/* consumer_run's until hook: once a second, the progress into the row (and
 * into the log every LOG_EVERY_S); when caught up, the switch. True when
 * the run is over. */
static bool tick(void *arg)
{
	const double now = clock_mono_s();
	const int64_t before = replayed;
	char why[256];
	int64_t lag;
	int rc;

	(void)arg;
	if (outcome != RB_RUNNING)
		return true;
	if (now - last_tick < 1.0)
		return false;
	last_tick = now;
	positions_update();
	progress_update(now);
	if (replayed > before)
		alarm(REBUILD_STALL_S);
	/* The control connection went with the database: take the lock
	 * again, unless another rebuild has it by now. */
	if (conn == NULL && (rc = ctl_connect(why, sizeof(why))) != 0) {
		log_warn("rebuild g%d: control connection: %s", generation, why);
		if (rc > 0) {
			snprintf(error, sizeof(error), "lost the rebuild lock: %s", why);
			row_final = true;
			outcome = RB_FAILED;
		}
		return outcome != RB_RUNNING;
	}
	if (progress_report(why, sizeof(why)) != 0)
		log_warn("rebuild g%d: progress not recorded: %s", generation, why);
	if (now - last_log >= LOG_EVERY_S) {
		progress_log();
		last_log = now;
	}
	if (ends_now(clock_mono_s() + KAFKA_WAIT_MS / 1000.0, why, sizeof(why)) != 0) {
		log_warn("rebuild g%d: end offsets: %s", generation, why);
		return false;
	}
	lag = lag_max();
	if (lag <= REBUILD_CATCHUP_MESSAGES) {
		alarm(REBUILD_STALL_S); /* waiting for the switch is no stall */
		if (now >= next_switch)
			switch_try();
	}
	return outcome != RB_RUNNING;
}

/* Everything after the replay: the row, the output, the exit status. */
static int rebuild_finish(void)
{
	char why[256], n[24] = "?";
	const char *vals[] = {error};
	PGresult *res = NULL;

	if (outcome == RB_LIVE) {
		if (ctl("SELECT count(*) FROM " SINK_TABLE, 0, NULL, PGRES_TUPLES_OK, &res, why,
		        sizeof(why)) == 0)
			snprintf(n, sizeof(n), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		printf("rebuild: generation %d is live: %s now holds %s rows (%" PRId64
		       " messages replayed in %.1f s)\n",
		       generation, SINK_TABLE, n, replayed, clock_mono_s() - started);
		printf("rebuild: switched in %.1f ms (the live table was locked that long)\n", switch_ms);
		printf("rebuild: the previous tables are kept as %s and %s; drop them when they are "
		       "no longer needed: DROP TABLE %s, %s;\n",
		       old_table, old_counts, old_table, old_counts);
		fflush(stdout);
		log_info("rebuild g%d: live, switched in %.1f ms", generation, switch_ms);
		return 0;
	}
	if (outcome == RB_RUNNING && atomic_load(&stalled))
		snprintf(error, sizeof(error), "no progress for %d s (the database or the broker "
		                                "stayed away)", REBUILD_STALL_S),
		    outcome = RB_FAILED;
	if (outcome == RB_RUNNING && atomic_load(&signalled)) {
		snprintf(error, sizeof(error),
		         "stopped by a signal at %" PRId64 " of %" PRId64
		         " messages: run --rebuild again to resume generation %d",
		         done, total, generation);
		if (row_update("UPDATE timestamp_rebuilds SET state = 'replaying', error = $2, "
		               "updated_at = now() WHERE generation = $1",
		               1, vals, why, sizeof(why)) != 0)
			log_warn("rebuild g%d: state row: %s", generation, why);
	} else {
		if (outcome == RB_RUNNING)
			snprintf(error, sizeof(error), "the consumer stopped (see the log)");
		if (row_update("UPDATE timestamp_rebuilds SET state = 'failed', error = $2, "
		               "updated_at = now() WHERE generation = $1",
		               1, vals, why, sizeof(why)) != 0)
			log_warn("rebuild g%d: state row: %s", generation, why);
	}
	fprintf(stderr, "consumer-service: --rebuild: generation %d: %s\n", generation, error);
	return 1;
}

int rebuild_main(const struct consumer_config *c)
{
	struct sigaction sa;
	char errstr[512], got[512];
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alarm(REBUILD_STALL_S);
	started = clock_mono_s();
	cfg = *c;

	if ((rc = ctl_connect_retry(errstr, sizeof(errstr))) != 0) {
		if (rc > 0)
			fprintf(stderr, "consumer-service: --rebuild: %s\n", errstr);
		else
			fprintf(stderr, "consumer-service: --rebuild: %s before the database answered "
			                "(last: %s)\n",
			        atomic_load(&stalled) ? "no progress for " STR(REBUILD_STALL_S) " s"
			                              : "stopped by a signal",
			        errstr);
		return 1;
	}
	if (rebuild_begin(errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "consumer-service: --rebuild: %s\n", errstr);
		ctl_close();
		return 1;
	}
	cfg.group = group;
	cfg.table = table;
	cfg.until = tick;
	if (consumer_setup(&cfg, errstr, sizeof(errstr)) != 0) {
		snprintf(error, sizeof(error), "kafka consumer: %.400s", errstr);
		row_final = true; /* resumable once the configuration is fixed */
		goto stopped;
	}
	/* KAFKA_PROPERTIES may name a group: not for a rebuild, which would
	 * then consume (and commit) as that group. */
	if (consumer_kafka_property("group.id", got, sizeof(got)) != 0 || strcmp(got, group) != 0) {
		snprintf(error, sizeof(error),
		         "KAFKA_PROPERTIES sets group.id=%.200s: a rebuild consumes as its own group %.200s",
		         got, group);
		row_final = true;
		consumer_shutdown();
		goto stopped;
	}
	for (int backoff = 100; parts_load(errstr, sizeof(errstr)) != 0;) {
		log_warn("rebuild g%d: kafka: %s; retrying in %d ms", generation, errstr, backoff);
		for (int waited = 0; waited < backoff && !atomic_load(&stop); waited += 50)
			nap_ms(50);
		if (atomic_load(&stop)) {
			consumer_shutdown();
			return rebuild_finish();
		}
		backoff = backoff * 2 > cfg.retry_max_ms ? cfg.retry_max_ms : backoff * 2;
	}
	progress_update(clock_mono_s());
	if (progress_report(errstr, sizeof(errstr)) != 0)
		log_warn("rebuild g%d: progress not recorded: %s", generation, errstr);
	log_info("rebuild g%d: replaying %s (%d partitions, %" PRId64 " messages) into %s as "
	         "group %s",
	         generation, cfg.topic, n_parts, total, table, group);
	progress_log();
	last_log = clock_mono_s();

	if (consumer_run(&stop) != 0 && outcome == RB_RUNNING)
		outcome = RB_FAILED, snprintf(error, sizeof(error), "the consumer stopped (see the log)");
	consumer_shutdown();
	rc = rebuild_finish();
	ctl_close();
	free(parts);
	return rc;
stopped:
	fprintf(stderr, "consumer-service: --rebuild: generation %d: %s\n", generation, error);
	ctl_close();
	return 1;
}
