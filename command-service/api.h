/* api: the command service's HTTP routes. */
#ifndef COMMAND_API_H
#define COMMAND_API_H

#include "http.h"

/* The service's routes, for http_start. */
extern const struct http_routes api_routes;

#endif
