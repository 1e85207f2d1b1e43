/* api: the query service's HTTP routes. */
#ifndef QUERY_API_H
#define QUERY_API_H

#include "http.h"

#include "pool.h"

/* The statements every pooled connection prepares. */
extern const struct pool_stmt api_statements[];

/* The service's routes, for http_start. */
extern const struct http_routes api_routes;

#endif
