/* api: the command service's HTTP routes. */
#ifndef COMMAND_API_H
#define COMMAND_API_H

#include <civetweb.h>

/* Registers the service's metrics; call once before serving. */
void api_setup(void);

/* civetweb handler for every request. Returns the status it sent. */
int api_handle(struct mg_connection *conn, void *cbdata);

#endif
