/* cluster: what the failover tests of the cluster form share — the services
 * configured for three brokers and a primary with a standby, the brokers'
 * partition leaders and ISRs (scripts/kafka.sh), a steady stream of POSTs
 * and the verdict on its answers. The fault machinery itself (clients that
 * record every answer, scripts, rows) is the harness's fault.h. */
#ifndef CLUSTER_CLUSTER_H
#define CLUSTER_CLUSTER_H

#include <check.h>
#include <stdbool.h>

#include "fault.h"

#define CLUSTER_NODES 3
#define CLUSTER_PARTITIONS 6 /* KAFKA_TOPIC_PARTITIONS' default */

/* The POST clients of the running test (started by cluster_start_load). */
extern struct fault_load cluster_load;

/* Starts the three services for the cluster form (topics with RF 3 and
 * min.insync.replicas=2; query-service with DB_READ_URL), then the POST
 * clients, and lets them run for a while before the fault. */
void cluster_start_load(void);

/* Stops the clients and the services, and starts every broker that is down
 * (the next test finds the whole cluster). Asserts nothing: a teardown. */
void cluster_teardown(void);

/* Runs scripts/<script> <action> (e.g. "kafka.sh", "kill-node 2"), asserting
 * exit status 0; returns how long it took in ms. */
long cluster_script(const char *script, const char *action);

/* The node leading partition of the stack's topic, per the metadata of the
 * brokers that answer: 1..3, or -1 when it has no leader (or none answers). */
int cluster_leader(int partition);

/* True if node is in the ISR of partition of the stack's topic. */
bool cluster_in_isr(int partition, int node);

/* Waits up to timeout_ms until POSTs sent after t succeed again: the point
 * from which at least run answers came and every one was a 200. Returns that
 * point (clock_mono_ms); fails the test at the deadline. */
long cluster_await_200s(long t, int run, long timeout_ms, const char *what);

/* Stops the clients and checks their answers: each a 200 or a 503 (nothing
 * else: no failed connection, no 500); every request sent in [from, to) and
 * answered before to a 503 (from == to: no such window); every request
 * sent after recovered (if > 0) a 200; and every ticket answered 200 is
 * exactly one row, and readable through the query service. */
void cluster_check_answers(const char *what, long from, long to, long recovered);

#endif
