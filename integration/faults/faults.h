/* faults: one Check suite per fault the services must survive. */
#ifndef FAULTS_FAULTS_H
#define FAULTS_FAULTS_H

#include <check.h>

Suite *make_poison_suite(void);   /* undecodable messages of every kind */
Suite *make_edge_suite(void);     /* abuse at the HTTP edge */
Suite *make_broker_suite(void);   /* Kafka frozen, Kafka restarted */
Suite *make_database_suite(void); /* PostgreSQL down for 20 s */
Suite *make_freeze_suite(void);   /* PostgreSQL frozen (SIGSTOP) for 15 s */
Suite *make_kill_suite(void);     /* the consumer SIGKILLed mid-stream */
Suite *make_scaleout_suite(void); /* two consumers in one group */
Suite *make_stop_suite(void);     /* SIGTERM under load */
Suite *make_readystop_suite(void); /* SIGTERM while /ready is probed */
Suite *make_topic_suite(void);
Suite *make_rebuild_suite(void);  /* the blue-green rebuild under load, killed, twice */
Suite *make_observe_suite(void);  /* /rebuild, rebuild_*, consumer_lag_seconds, READY_MAX_LAG_S */
Suite *make_dr_suite(void);       /* the table rebuilt from the topic, twice */    /* the configs of the topics created */
Suite *make_replay_suite(void);   /* --reset-offsets to a chosen point, --dry-run */
Suite *make_verify_suite(void);   /* --verify: the table against the topic */
Suite *make_counts_suite(void);   /* timestamp_counts after duplicates, replays, --rebuild */
Suite *make_live_suite(void);     /* Prefer: wait, the event stream (issue 12) */

#endif
