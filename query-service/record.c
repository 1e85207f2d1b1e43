/* record: the API's JSON form of a record (see record.h). */
#include "record.h"

#include <stdio.h>

int record_json(const char *id, const struct ts_instant *event_time,
                const struct ts_instant *created_at, char *buf, size_t size)
{
	char ev[TS_TEXT_MAX], cr[TS_TEXT_MAX], idt[UID_TEXT_SIZE];
	int n;

	uid_normalize(id, idt);
	ts_format(event_time, 6, ev);
	ts_format(created_at, 6, cr);
	n = snprintf(buf, size,
	             "{\"id\":\"%s\",\"command_id\":\"%s\",\"event_timestamp\":\"%s\","
	             "\"created_at\":\"%s\"}",
	             idt, idt, ev, cr);
	return n >= 0 && (size_t)n < size ? n : -1;
}
