/* api: the command service's HTTP routes. */
#ifndef COMMAND_API_H
#define COMMAND_API_H

#include <stddef.h>

#include "http.h"

/* Sets what the 200's Location header starts with: "" (the query
 * service's path alone) or the query service's base URL as clients reach
 * it (http[s]://host[:port][/prefix], no trailing '/' needed, nothing a
 * header cannot carry). Returns 0, or -1 with errstr. */
int api_setup(const char *query_public_url, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Writes the 200's header line "Location: <url>/api/v1/timestamp/<id>\r\n"
 * into buf[size]. Returns its length, or -1 if it does not fit. */
int api_location(const char *id, char *buf, size_t size);

/* The service's routes, for http_start. */
extern const struct http_routes api_routes;

#endif
