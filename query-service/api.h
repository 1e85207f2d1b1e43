/* api: the query service's HTTP routes. */
#ifndef QUERY_API_H
#define QUERY_API_H

#include <civetweb.h>

#include "pool.h"

/* The statements every pooled connection prepares. */
extern const struct pool_stmt api_statements[];

/* Registers the service's metrics; call once before serving. */
void api_setup(void);

/* civetweb handler for every request. Returns the status it sent. */
int api_handle(struct mg_connection *conn, void *cbdata);

#endif
