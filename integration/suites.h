/* suites: one Check suite per area of the integration tests. */
#ifndef INTEGRATION_SUITES_H
#define INTEGRATION_SUITES_H

#include <check.h>

Suite *make_health_suite(void);
Suite *make_timestamp_suite(void);
Suite *make_errors_suite(void);
Suite *make_correlation_suite(void);
Suite *make_message_suite(void);
Suite *make_idempotency_suite(void);
Suite *make_dlq_suite(void);
Suite *make_load_suite(void);
Suite *make_metrics_suite(void);
Suite *make_read_suite(void);
Suite *make_read_url_suite(void);
Suite *make_tracing_suite(void);
/* Run last and without forking: it stops the services. */
Suite *make_shutdown_suite(void);

#endif
