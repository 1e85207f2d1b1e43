/* consumer-service: writes every command of the Kafka topic into PostgreSQL,
 * idempotently, so that the database can always be rebuilt from the topic. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "consumer.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "rebuild.h"
#include "rebuild_status.h"
#include "reset.h"
#include "trace.h"
#include "verify.h"

static atomic_bool stop;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, true);
}

/* /health, /ready and /metrics are answered by http.c; /rebuild here. */
static int route(struct http_req *req, const char **route_name)
{
	if (strcmp(req->path, "/rebuild") == 0) {
		*route_name = "/rebuild";
		http_trace(req);
		return rebuild_status_serve(req);
	}
	return http_send_error(req, 404, NULL, "no such resource: %s", req->path);
}

static const struct http_routes routes = {.route = route, .down = consumer_down};

static const char summary[] =
    "Consumes the command topic as a consumer group and writes each command\n"
    "into PostgreSQL (ON CONFLICT DO NOTHING), committing offsets only after\n"
    "the rows are committed. Serves /health, /ready, /metrics and /rebuild\n"
    "(the status of the latest blue-green rebuild).\n"
    "\n"
    "       consumer-service " RESET_USAGE "\n"
    "sets the committed offsets of the group KAFKA_GROUP_ID on KAFKA_CONSUMER_TOPIC\n"
    "(Kafka Admin API) and exits, so that the group's next consumer replays from\n"
    "there: earliest, every partition's first offset; latest, its end (replay\n"
    "nothing); to-datetime, the first offset whose timestamp is at or after the\n"
    "instant (the end where there is none); to-offset, the offsets named, each\n"
    "within its partition's log (start to end), the other partitions unchanged.\n"
    "Prints per partition the committed offset, the new one and the messages to\n"
    "replay; with --dry-run only prints that plan and changes nothing. Exit 0 when\n"
    "done, 1 if not, 2 for a bad argument. The group must be idle (also for\n"
    "--dry-run): stop all its consumers first (see the README, \"Disaster recovery\").\n"
    "\n"
    "       consumer-service --rebuild\n"
    "rebuilds the table beside the live one, without downtime: replays the topic\n"
    "from its start into timestamp_records_g<N> as group KAFKA_GROUP_ID.rebuild-g<N>,\n"
    "and its counts into timestamp_counts_g<N>, then, caught up, renames the tables\n"
    "and their indexes in one transaction (the old ones are kept as\n"
    "timestamp_records_old_g<N> and timestamp_counts_old_g<N> until you drop them)\n"
    "and exits 0. Progress goes to the log and to the table timestamp_rebuilds. One\n"
    "rebuild at a time; a rebuild that stopped is resumed by the next --rebuild.\n"
    "Listens on no port.\n"
    "\n"
    "       consumer-service --verify\n"
    "compares the table timestamp_records with the topic: reads every partition\n"
    "from its first offset to its end as of the start (no group, nothing\n"
    "committed) and the whole table, and prints per partition the messages, the\n"
    "decodable ones and how many of their ids have a row, then the ids missing\n"
    "from the table, the rows with no message, and the rows whose event_timestamp\n"
    "or created_at differ from their message. Undecodable messages (dead letters)\n"
    "are counted apart, not as missing. Then compares timestamp_counts with the\n"
    "table's rows per minute (a GROUP BY) and prints the minutes that differ. Exit 0\n"
    "when table, topic and counts agree, 1 when they differ, 3 when the check could\n"
    "not be made. It holds every distinct id of the topic in a hash table in memory\n"
    "(64 to 128 bytes each: at most 128 MiB per million ids); the table is streamed\n"
    "through a cursor.";

/* `--reset-offsets ...`: run instead of the service. Returns the exit
 * status. */
static int run_reset(const struct consumer_config *cc, const struct reset_request *req)
{
	struct reset_result res;
	char errstr[1024];
	int failed;

	failed = reset_offsets(cc, req, &res, errstr, sizeof(errstr));
	reset_result_print(&res, req, cc->topic, stdout);
	fflush(stdout);
	if (failed)
		fprintf(stderr, "consumer-service: --reset-offsets: %s\n", errstr);
	reset_result_free(&res);
	return failed ? 1 : 0;
}

/* `--verify`: run instead of the service. Returns the exit status. */
static int run_verify(const struct consumer_config *cc)
{
	char errstr[1024];
	enum verify_result res = verify_run(cc, stdout, errstr, sizeof(errstr));

	fflush(stdout);
	if (res == VERIFY_FAILED) {
		fprintf(stderr, "consumer-service: --verify: could not check: %s\n", errstr);
		return 3;
	}
	return res == VERIFY_AGREE ? 0 : 1;
}

int main(int argc, char **argv)
{
	/* The consumer writes: whatever DB_URL's target_session_attrs, it
	 * wants the primary (a standby refuses writes, and with several hosts
	 * the primary is the one that accepts them). Until one does (a
	 * failover half-way), connecting fails and is retried as an outage. */
	struct consumer_config cc = {.db.app_name = "consumer-service",
	                             .db.session_attrs = "read-write"};
	struct http_server_opts ho = {.routes = &routes};
	const char *db_url;
	enum log_level level;
	char errstr[512];
	struct mg_context *ctx;
	struct sigaction sa;
	struct reset_request req;
	struct trace_config tc;
	int rc, reset, rebuild, verify;
	const struct cfg_param params[] = {
	    HTTP_CFG_PARAMS(ho, "7081", "4"),
	    LOG_CFG_PARAM(level),
	    KAFKA_CFG_BROKER(cc.brokers),
	    {"KAFKA_CONSUMER_TOPIC", CFG_STRING, &cc.topic, "timestamp.command.v1", 0, 0,
	     "topic to consume (dead letters go to <topic>.dlq)"},
	    {"KAFKA_GROUP_ID", CFG_STRING, &cc.group, "timestamp-consumer-service", 0, 0,
	     "consumer group; a new one replays the topic from the start"},
	    {"KAFKA_TOPIC_REPLICATION", CFG_INT, &cc.replication, "1", 1, 32,
	     "replication factor when the dead-letter topic is created"},
	    {"KAFKA_PROPERTIES", CFG_STRING, &cc.properties, "", 0, 0,
	     "extra librdkafka consumer properties, e.g. session.timeout.ms=30000"},
	    {"CONSUMER_BATCH_SIZE", CFG_INT, &cc.batch_size, "2000", 1, 100000,
	     "most messages written in one statement"},
	    CONSUMER_CFG_PREFETCH(cc.prefetch_kb),
	    {"DB_RETRY_MAX_MS", CFG_INT, &cc.retry_max_ms, "5000", 100, 600000,
	     "cap of the backoff between database retries"},
	    CONSUMER_CFG_READY_MAX_LAG(cc.ready_max_lag_s),
	    {"CONSUMER_DURABLE_STANDBYS", CFG_INT, &cc.durable_standbys, "0", 0, 16,
	     "commit a batch's offsets only once this many streaming standbys have flushed its "
	     "rows (1 with a standby: a promoted standby then has every row whose offset is "
	     "committed; needs pg_read_all_stats)"},
	    DB_CFG_PARAMS(db_url, cc.db),
	    TRACE_CFG_PARAMS(tc),
	};

	if ((reset = reset_parse_args(argc, argv, &req, errstr, sizeof(errstr))) < 0) {
		fprintf(stderr, "consumer-service: %s\nusage: consumer-service %s (try --help)\n",
		        errstr, RESET_USAGE);
		return 2;
	}
	if ((rebuild = argc >= 2 && strcmp(argv[1], "--rebuild") == 0) && argc != 2) {
		fprintf(stderr, "consumer-service: usage: --rebuild (it takes no argument; try --help)\n");
		return 2;
	}
	verify = argc >= 2 && strcmp(argv[1], "--verify") == 0;
	if (verify && argc > 2) {
		fprintf(stderr, "consumer-service: --verify takes no other argument, not '%s'\n"
		                "usage: consumer-service --verify (try --help)\n", argv[2]);
		return 2;
	}
	if (!reset && !rebuild && !verify &&
	    (rc = cfg_args(argc, argv, "consumer-service", summary, params, CFG_COUNT(params))) >= 0)
		return rc;
	if (cfg_load(params, CFG_COUNT(params), errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "consumer-service: %s\n", errstr);
		return 2;
	}
	if (db_url_convert(db_url, cc.db.url, sizeof(cc.db.url), errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "consumer-service: DB_URL: %s\n", errstr);
		return 2;
	}
	if (cc.topic[0] == '\0' || cc.group[0] == '\0') {
		fprintf(stderr, "consumer-service: KAFKA_CONSUMER_TOPIC and KAFKA_GROUP_ID must not be empty\n");
		return 2;
	}
	log_setup("consumer-service", level);
	if (verify)
		return run_verify(&cc);
	if (reset)
		return run_reset(&cc, &req);
	if (rebuild)
		return rebuild_main(&cc); /* not traced: a replay, not requests */
	if (trace_setup(&tc, "consumer-service", errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "consumer-service: %s\n", errstr);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (consumer_setup(&cc, errstr, sizeof(errstr)) != 0) {
		log_error("kafka consumer: %s", errstr);
		trace_shutdown(0);
		return 1;
	}
	rebuild_status_setup(&cc.db);
	ctx = http_start(&ho, errstr, sizeof(errstr));
	if (ctx == NULL) {
		log_error("http: %s", errstr);
		consumer_shutdown();
		trace_shutdown(0);
		return 1;
	}
	log_info("listening on %s:%d, consuming %s at %s", ho.address, ho.port, cc.topic,
	         cc.brokers);

	rc = consumer_run(&stop) == 0 ? 0 : 1;

	log_info("stopping");
	/* HTTP first: /ready asks the Kafka handle that consumer_shutdown
	 * destroys, and mg_stop returns only after every handler has. */
	mg_stop(ctx);
	consumer_shutdown(); /* ends the spans of the batch in hand */
	trace_shutdown(2000);
	mg_exit_library();
	log_info("stopped");
	return rc;
}
