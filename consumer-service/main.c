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
#include "rebuild_status.h"
#include "reset.h"

static atomic_bool stop;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, true);
}

/* /health, /ready and /metrics are answered by http.c; /rebuild here. */
static int route(struct http_req *req, const char **route_name)
{
	if (strcmp(req->path, "/rebuild") == 0)
		return *route_name = "/rebuild", rebuild_status_serve(req);
	return http_send_error(req, 404, NULL, "no such resource: %s", req->path);
}

static const struct http_routes routes = {.route = route, .down = consumer_down};

static const char summary[] =
    "Consumes the command topic as a consumer group and writes each command\n"
    "into PostgreSQL (ON CONFLICT DO NOTHING), committing offsets only after\n"
    "the rows are committed. Serves /health, /ready, /metrics and /rebuild\n"
    "(the status of the latest blue-green rebuild).\n"
    "\n"
    "       consumer-service --reset-offsets earliest\n"
    "sets the committed offsets of the group KAFKA_GROUP_ID on KAFKA_CONSUMER_TOPIC\n"
    "to the first offset of every partition (Kafka Admin API), prints each\n"
    "partition's offsets before and after, and exits: 0 when every partition was\n"
    "reset, 1 if not. The group must be idle: stop all its consumers first. The\n"
    "next consumer of the group then replays the whole topic, which rebuilds the\n"
    "table (see the README, \"Disaster recovery\").";

/* `--reset-offsets earliest`: run instead of the service. Returns the exit
 * status. */
static int reset_offsets(const struct consumer_config *cc)
{
	struct reset_result res;
	char errstr[1024];
	int failed;

	failed = reset_offsets_earliest(cc, &res, errstr, sizeof(errstr));
	reset_result_print(&res, cc->topic, stdout);
	fflush(stdout);
	if (failed)
		fprintf(stderr, "consumer-service: --reset-offsets: %s\n", errstr);
	reset_result_free(&res);
	return failed ? 1 : 0;
}

/* Recognises `--reset-offsets earliest` (or `--reset-offsets=earliest`).
 * Returns 1 when given, 0 when not, -1 (after a message) when malformed. */
static int reset_requested(int argc, char **argv)
{
	const char *to;

	if (argc < 2 || strncmp(argv[1], "--reset-offsets", 15) != 0)
		return 0;
	if (argv[1][15] == '=' && argc == 2)
		to = argv[1] + 16;
	else if (argv[1][15] == '\0' && argc == 3)
		to = argv[2];
	else
		to = NULL;
	if (to == NULL || strcmp(to, "earliest") != 0) {
		fprintf(stderr, "consumer-service: usage: --reset-offsets earliest "
		                "(the only position supported; try --help)\n");
		return -1;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct consumer_config cc = {.db.app_name = "consumer-service"};
	struct http_server_opts ho = {.routes = &routes};
	const char *db_url;
	enum log_level level;
	char errstr[512];
	struct mg_context *ctx;
	struct sigaction sa;
	int rc, reset;
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
	    DB_CFG_PARAMS(db_url, cc.db),
	};

	if ((reset = reset_requested(argc, argv)) < 0)
		return 2;
	if (!reset && (rc = cfg_args(argc, argv, "consumer-service", summary, params,
	                             CFG_COUNT(params))) >= 0)
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
	if (reset)
		return reset_offsets(&cc);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (consumer_setup(&cc, errstr, sizeof(errstr)) != 0) {
		log_error("kafka consumer: %s", errstr);
		return 1;
	}
	rebuild_status_setup(&cc.db);
	ctx = http_start(&ho, errstr, sizeof(errstr));
	if (ctx == NULL) {
		log_error("http: %s", errstr);
		consumer_shutdown();
		return 1;
	}
	log_info("listening on %s:%d, consuming %s at %s", ho.address, ho.port, cc.topic,
	         cc.brokers);

	rc = consumer_run(&stop) == 0 ? 0 : 1;

	log_info("stopping");
	/* HTTP first: /ready asks the Kafka handle that consumer_shutdown
	 * destroys, and mg_stop returns only after every handler has. */
	mg_stop(ctx);
	consumer_shutdown();
	mg_exit_library();
	log_info("stopped");
	return rc;
}
