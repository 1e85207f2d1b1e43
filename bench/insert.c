/* insert: the consumer's ceiling. PostgreSQL absorbing N rows through the
 * consumer's own sink (the same prepared INSERT … SELECT FROM unnest …
 * ON CONFLICT DO NOTHING, one statement and transaction per batch, one
 * connection), with no Kafka and no decoding in front of it.
 *
 * usage: insert DB_URL N BATCH       prints "inserted N in S s" */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "../consumer-service/sink.h" /* the consumer's module, the one thing taken from it */
#include "clock.h"
#include "db.h"
#include "log.h"

static long arg_long(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return (errno || *end != '\0' || v <= 0) ? -1 : v;
}

int main(int argc, char **argv)
{
	struct db_params db = {.user = "postgres", .password = "", .app_name = "bench-insert"};
	struct sink_row *rows;
	char errstr[512];
	long n, batch, i, done, inserted, total = 0;
	double t0;

	if (argc != 4 || (n = arg_long(argv[2])) < 0 || (batch = arg_long(argv[3])) < 0) {
		fprintf(stderr, "usage: insert DB_URL N BATCH\n");
		return 2;
	}
	log_setup("insert", LOG_WARN);
	if (db_url_convert(argv[1], db.url, sizeof(db.url), errstr, sizeof(errstr)) != 0 ||
	    sink_connect(&db, NULL, errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "insert: %s\n", errstr);
		return 1;
	}
	/* Rows made up front: only the database's work is timed. */
	if ((rows = calloc((size_t)n, sizeof(*rows))) == NULL) {
		fprintf(stderr, "insert: out of memory\n");
		return 1;
	}
	for (i = 0; i < n; i++) {
		uid_v4(rows[i].id);
		rows[i].event_time = rows[i].created_at = ts_now();
	}
	t0 = clock_mono_s();
	for (done = 0; done < n; done += batch) {
		size_t k = (size_t)(n - done < batch ? n - done : batch);

		if (sink_insert(rows + done, k, &inserted, errstr, sizeof(errstr)) != 0) {
			fprintf(stderr, "insert: %s\n", errstr);
			return 1;
		}
		total += inserted;
	}
	printf("inserted %ld in %.3f s\n", total, clock_mono_s() - t0);
	sink_shutdown();
	free(rows);
	return total == n ? 0 : 1;
}
