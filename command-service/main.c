/* command-service: accepts timestamp commands over HTTP and publishes each
 * to Kafka, answering only once the broker has acknowledged it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "cfg.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "publisher.h"
#include "trace.h"

static const char summary[] =
    "Accepts POST /api/v1/timestamp/{rfc3339} (and /app) and publishes each\n"
    "command to Kafka; answers 200 {\"id\":…} once the broker acknowledged it.";

int main(int argc, char **argv)
{
	struct pub_config pc;
	struct trace_config tc;
	struct http_server_opts ho = {.routes = &api_routes};
	enum log_level level;
	const char *query_url;
	char errstr[512];
	struct mg_context *ctx;
	sigset_t sigs;
	int rc;
	const struct cfg_param params[] = {
	    HTTP_CFG_PARAMS(ho, "7080", "128"),
	    LOG_CFG_PARAM(level),
	    KAFKA_CFG_BROKER(pc.brokers),
	    {"KAFKA_PUBLISH_TOPIC", CFG_STRING, &pc.topic, "timestamp.command.v1", 0, 0,
	     "topic to publish to"},
	    {"KAFKA_TOPIC_PARTITIONS", CFG_INT, &pc.partitions, "6", 1, 10000,
	     "partitions when the topic is created"},
	    {"KAFKA_TOPIC_REPLICATION", CFG_INT, &pc.replication, "1", 1, 32,
	     "replication factor when the topic is created"},
	    {"KAFKA_PROPERTIES", CFG_STRING, &pc.properties, "", 0, 0,
	     "extra librdkafka producer properties, e.g. linger.ms=5,compression.type=lz4"},
	    {"PUBLISH_TIMEOUT_MS", CFG_INT, &pc.timeout_ms, "5000", 100, 300000,
	     "how long a request waits for the broker's acknowledgement before 503"},
	    {"QUERY_PUBLIC_URL", CFG_STRING, &query_url, "", 0, 0,
	     "the query service's base URL as clients reach it, e.g. http://127.0.0.1:7082: "
	     "the 200's Location header starts with it (empty: the path alone)"},
	    TRACE_CFG_PARAMS(tc),
	};

	if ((rc = cfg_args(argc, argv, "command-service", summary, params,
	                   CFG_COUNT(params))) >= 0)
		return rc;
	if (cfg_load(params, CFG_COUNT(params), errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "command-service: %s\n", errstr);
		return 2;
	}
	if (pc.topic[0] == '\0') {
		fprintf(stderr, "command-service: KAFKA_PUBLISH_TOPIC: must not be empty\n");
		return 2;
	}
	if (api_setup(query_url, errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "command-service: QUERY_PUBLIC_URL: %s\n", errstr);
		return 2;
	}
	log_setup("command-service", level);

	http_signals_block(&sigs); /* taken by http_serve_until_signal */

	if (trace_setup(&tc, "command-service", errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "command-service: %s\n", errstr);
		return 2;
	}
	if (pub_setup(&pc, errstr, sizeof(errstr)) != 0) {
		log_error("kafka producer: %s", errstr);
		trace_shutdown(0);
		return 1;
	}
	ctx = http_start(&ho, errstr, sizeof(errstr));
	if (ctx == NULL) {
		log_error("http: %s", errstr);
		pub_shutdown(0);
		trace_shutdown(0);
		return 1;
	}
	log_info("listening on %s:%d, publishing to %s at %s", ho.address, ho.port,
	         pc.topic, pc.brokers);

	/* The requests in progress are answered while the producer still runs.
	 * Within the 10 s a stop may take: 5 s, 1 s for mg_stop, 3 s to flush
	 * (the messages, then what is still unsent is failed), 1 s to export
	 * the last spans, theirs included. */
	http_serve_until_signal(ctx, &sigs, 5000);
	pub_shutdown(2500);
	trace_shutdown(1000);
	mg_exit_library();
	log_info("stopped");
	return 0;
}
