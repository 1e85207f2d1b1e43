/* test_db: DB_URL conversion (common/db.c): libpq URIs pass as they are,
 * JDBC URLs lose their "jdbc:" prefix, anything else is refused. And the
 * time limits, against fake servers on 127.0.0.1: one that never answers
 * (a listening socket nobody accepts on: what a frozen server looks like
 * from outside), and one that speaks just enough of the protocol to answer
 * "SELECT 1", an error, or nothing at all. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "pg_startup.h"
#include "suites.h"

static const struct {
	const char *in, *out;
} converted[] = {
    {"postgresql://h:5432/db", "postgresql://h:5432/db"},
    {"postgres://h:5432/db", "postgres://h:5432/db"},
    {"postgresql://127.0.0.1:5432/postgres", "postgresql://127.0.0.1:5432/postgres"},
    {"postgresql://", "postgresql://"},
    {"postgresql://u:pw@h/db", "postgresql://u:pw@h/db"},
    {"postgresql://h:5432/db?user=x&sslmode=disable", "postgresql://h:5432/db?user=x&sslmode=disable"},
    {"postgresql:///db?host=/var/run/postgresql", "postgresql:///db?host=/var/run/postgresql"},
    {"postgresql://h1:5432,h2:5433/db", "postgresql://h1:5432,h2:5433/db"},
    {"jdbc:postgresql://h:5432/db", "postgresql://h:5432/db"},
    {"jdbc:postgresql://h:5432/db?user=x&sslmode=disable", "postgresql://h:5432/db?user=x&sslmode=disable"},
    {"jdbc:postgresql://localhost:5432/postgres", "postgresql://localhost:5432/postgres"},
    /* several hosts, in both forms */
    {"postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write",
     "postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write"},
    {"postgresql://u:pw@h1,h2,h3/db", "postgresql://u:pw@h1,h2,h3/db"},
    {"postgresql://[::1]:5432,[::1]:5433/db", "postgresql://[::1]:5432,[::1]:5433/db"},
    {"postgresql://h1:1,h2:65535/db", "postgresql://h1:1,h2:65535/db"},
    {"jdbc:postgresql://h1:5432,h2:5433/db", "postgresql://h1:5432,h2:5433/db"},
    /* JDBC parameters become their libpq twins */
    {"jdbc:postgresql://h1:5432,h2:5433/db?targetServerType=primary",
     "postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write"},
    {"jdbc:postgresql://h/db?targetServerType=master", "postgresql://h/db?target_session_attrs=read-write"},
    {"jdbc:postgresql://h/db?targetServerType=any", "postgresql://h/db?target_session_attrs=any"},
    {"jdbc:postgresql://h/db?targetServerType=secondary", "postgresql://h/db?target_session_attrs=read-only"},
    {"jdbc:postgresql://h/db?targetServerType=slave", "postgresql://h/db?target_session_attrs=read-only"},
    {"jdbc:postgresql://h/db?targetServerType=preferSecondary",
     "postgresql://h/db?target_session_attrs=prefer-standby"},
    {"jdbc:postgresql://h/db?targetServerType=preferSlave",
     "postgresql://h/db?target_session_attrs=prefer-standby"},
    {"jdbc:postgresql://h1,h2/db?user=app&password=pw&connectTimeout=3&targetServerType=primary",
     "postgresql://h1,h2/db?user=app&password=pw&connect_timeout=3&target_session_attrs=read-write"},
    {"jdbc:postgresql://h/db?user=a&&sslmode=require", "postgresql://h/db?user=a&sslmode=require"},
    {"jdbc:postgresql://h/db?", "postgresql://h/db"},
};

START_TEST(convert_accepts)
{
	char out[1024], err[256] = "";

	memset(out, '#', sizeof(out));
	ck_assert_msg(db_url_convert(converted[_i].in, out, sizeof(out), err, sizeof(err)) == 0,
	              "'%s': %s", converted[_i].in, err);
	ck_assert_str_eq(out, converted[_i].out);
}
END_TEST

static const struct {
	const char *in, *why;
} refused[] = {
    {"mysql://h:3306/db", "another database"},
    {"jdbc:mysql://", "JDBC URL of another database"},
    {"jdbc:mysql://h:3306/db", "JDBC URL of another database"},
    {"", "empty"},
    {"garbage", "not a URL"},
    {"jdbc:", "a bare jdbc: prefix"},
    {"jdbc:jdbc:postgresql://h/db", "jdbc: twice"},
    {"http://h:5432/db", "http URL"},
    {"postgresql:/h/db", "one slash"},
    {" postgresql://h/db", "leading space"},
    {"host=h dbname=db", "key=value conninfo, not a URL"},
    {"postgresql://h:5432/db?foo=bar", "an option libpq does not know"},
    {"jdbc:postgresql://h:5432/db?foo=bar", "JDBC URL with an unknown option"},
    {"postgresql://h:5432/db?sslmode", "option without value"},
    {"postgresql://[::1/db", "unclosed IPv6 bracket"},
    {"postgresql://h1,,h2/db", "an empty host in the list"},
    {"postgresql://h1:5432,/db", "a trailing comma"},
    {"postgresql://,h2/db", "a leading comma"},
    {"postgresql://:5432/db", "a port without a host"},
    {"jdbc:postgresql://h1,:5433/db", "JDBC: a port without a host"},
    {"postgresql://h1:5432,h2:65536/db", "a port out of range"},
    {"postgresql://h1:0/db", "port 0"},
    {"postgresql://h1:-1/db", "a negative port"},
    {"postgresql://h1:54x2/db", "a port that is not a number"},
    {"postgresql://h1:/db", "an empty port"},
    {"jdbc:postgresql://h1:99999999999999999999/db", "a port beyond long"},
    {"jdbc:postgresql://h1,h2/db?targetServerType=leader", "a bad targetServerType"},
    {"jdbc:postgresql://h1,h2/db?targetServerType=", "an empty targetServerType"},
    {"jdbc:postgresql://h1,h2/db?targetServerType=Primary", "targetServerType is case-sensitive"},
    {"jdbc:postgresql://h/db?targetServerType=preferPrimary", "no libpq twin"},
    {"jdbc:postgresql://h/db?loadBalanceHosts=true", "a JDBC parameter without a libpq twin"},
    {"jdbc:postgresql://h/db?target_session_attrs=read-write", "libpq's name in a JDBC URL"},
    {"jdbc:postgresql://h/db?user", "a JDBC parameter without value"},
};

/* The reason names what is wrong. */
static const struct {
	const char *in, *reason;
} reasons[] = {
    {"postgresql://h1,,h2/db", "host 2 of the host list is empty"},
    {"postgresql://h1:5432,h2:65536/db", "port '65536' of host 2 is not a number in 1..65535"},
    {"jdbc:postgresql://h/db?targetServerType=leader", "JDBC targetServerType 'leader' is none of"},
    {"jdbc:postgresql://h/db?user=a&loadBalanceHosts=true",
     "JDBC parameter 'loadBalanceHosts' has no libpq equivalent (known: " DB_JDBC_PARAMS ")"},
};

START_TEST(convert_reason_names_what_is_wrong)
{
	char out[1024], err[256] = "";

	ck_assert_int_eq(db_url_convert(reasons[_i].in, out, sizeof(out), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, reasons[_i].reason) != NULL, "'%s': %s", reasons[_i].in, err);
}
END_TEST

START_TEST(convert_refuses_with_reason)
{
	char out[1024], err[256] = "";

	ck_assert_msg(db_url_convert(refused[_i].in, out, sizeof(out), err, sizeof(err)) == -1,
	              "'%s' (%s) accepted as '%s'", refused[_i].in, refused[_i].why, out);
	ck_assert_msg(err[0] != '\0', "'%s': empty reason", refused[_i].in);
	ck_assert_msg(strchr(err, '\n') == NULL, "'%s': reason spans lines: %s", refused[_i].in, err);
}
END_TEST

START_TEST(convert_refuses_too_long_for_the_buffer)
{
	char url[2048], out[1024], err[256] = "";
	size_t n;

	/* 1023 characters fit out[1024] exactly, 1024 do not. */
	strcpy(url, "postgresql://h:5432/");
	n = strlen(url);
	memset(url + n, 'd', 1023 - n);
	url[1023] = '\0';
	ck_assert_msg(db_url_convert(url, out, sizeof(out), err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(out, url);

	memset(url + n, 'd', 1024 - n);
	url[1024] = '\0';
	ck_assert_int_eq(db_url_convert(url, out, sizeof(out), err, sizeof(err)), -1);
	ck_assert(err[0] != '\0');

	/* The jdbc: prefix does not count: it is removed. */
	char jdbc[2048] = "jdbc:";
	strcpy(jdbc + 5, url);
	jdbc[5 + 1023] = '\0';
	ck_assert_msg(db_url_convert(jdbc, out, sizeof(out), err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(strlen(out), 1023);

	/* A small buffer. */
	ck_assert_int_eq(db_url_convert("postgresql://h:5432/db", out, 8, err, sizeof(err)), -1);
	ck_assert(err[0] != '\0');
}
END_TEST

/* The reason goes to stderr/the log: it must not carry the password of a
 * URL ("Secrets never appear in logs", DESIGN.md). */
static const char *const secret_urls[] = {
    "mysql://app:s3cretpw@h:3306/db",
    "jdbc:mysql://app:s3cretpw@h:3306/db",
    "postgresql://app:s3cretpw@h:5432/db?foo=bar",
    "postgresql://app:s3cretpw@[::1/db",
    "postgresql://app:s3cretpw@h/db?sslmode",
    "jdbc:postgresql://h/db?password=s3cretpw&targetServerType=bad",
    "jdbc:postgresql://h/db?password=s3cretpw&foo=1",
    "postgresql://app:s3cretpw@h1,,h2/db",
    "postgresql://app:s3cretpw@h1:99999/db",
};

START_TEST(convert_reason_never_shows_the_password)
{
	char out[1024], err[512] = "";

	ck_assert_int_eq(db_url_convert(secret_urls[_i], out, sizeof(out), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "s3cretpw") == NULL, "'%s': reason shows the password: %s",
	              secret_urls[_i], err);
}
END_TEST

START_TEST(error_line_is_one_line)
{
	char err[128];

	db_error_line("connection refused\n\tIs the server running?\n", err, sizeof(err));
	ck_assert_str_eq(err, "connection refused Is the server running?");
	db_error_line("ERROR:  relation \"x\" does not exist\nLINE 1: select\n\n", err, sizeof(err));
	ck_assert_str_eq(err, "ERROR: relation \"x\" does not exist LINE 1: select");
	db_error_line(NULL, err, sizeof(err));
	ck_assert_str_eq(err, "unknown error");
	db_error_line("", err, sizeof(err));
	ck_assert_str_eq(err, "unknown error");
}
END_TEST

/* ---- fake servers ---- */

/* A listening socket on 127.0.0.1 that nobody accepts on: the kernel
 * completes connections and takes their data, and nothing answers. */
static int listen_frozen(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void params_for(struct db_params *p, int port)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->url, sizeof(p->url),
	         "postgresql://127.0.0.1:%d/db?sslmode=disable&gssencmode=disable", port);
	p->user = "u";
	p->app_name = "test";
}

/* A server that completes the start-up of every connection, then either
 * answers a simple query (SELECT 1: one row; anything else: an error) or,
 * silent, reads and never answers. It counts the cancel requests it gets,
 * and keeps the options of the latest start-up packet. */
struct fake {
	int lfd, port;
	bool silent;
	atomic_bool stop;
	atomic_int cancels;
	pthread_t tid;
	char options[512]; /* read once fake_stop has joined the thread */
};

/* Reads n bytes; reads time out every 100 ms (SO_RCVTIMEO) to look at
 * f->stop. */
static bool read_full(struct fake *f, int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !atomic_load(&f->stop))
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* Sends one message: type, then length and body. */
static void send_msg(int fd, char type, const void *body, uint32_t len)
{
	char buf[512];
	uint32_t n = htonl(len + 4);

	buf[0] = type;
	memcpy(buf + 1, &n, 4);
	memcpy(buf + 5, body, len);
	(void)!write(fd, buf, 5 + len);
}

static void answer_query(int fd, const char *sql)
{
	if (strcmp(sql, "SELECT 1") == 0) {
		/* one int4 column "c"; one row "1"; SELECT 1; idle */
		static const char desc[] = {0, 1, 'c', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4,
		                            -1, -1, -1, -1, 0, 0};
		static const char row[] = {0, 1, 0, 0, 0, 1, '1'};
		send_msg(fd, 'T', desc, sizeof(desc));
		send_msg(fd, 'D', row, sizeof(row));
		send_msg(fd, 'C', "SELECT 1", 9);
	} else if (strcmp(sql, "SHOW transaction_read_only") == 0) {
		/* what libpq asks for target_session_attrs=read-write: a
		 * read-only server (a standby) */
		static const char desc[] = {0, 1, 'c', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, -1, -1,
		                            -1, -1, -1, -1, 0, 0};
		static const char row[] = {0, 1, 0, 0, 0, 2, 'o', 'n'};
		send_msg(fd, 'T', desc, sizeof(desc));
		send_msg(fd, 'D', row, sizeof(row));
		send_msg(fd, 'C', "SHOW", 5);
	} else {
		static const char err[] = "SERROR\0C42P01\0Mrelation \"nothing\" does not exist\0";
		send_msg(fd, 'E', err, sizeof(err));
	}
	send_msg(fd, 'Z', "I", 1);
}

/* One connection, from its first packet on. */
static void serve(struct fake *f, int fd)
{
	uint32_t len, code;
	char buf[4096], type;

	if (!read_full(f, fd, &len, 4) || (len = ntohl(len)) < 8 || len > sizeof(buf) ||
	    !read_full(f, fd, buf, len - 4))
		return;
	memcpy(&code, buf, 4);
	if (ntohl(code) == 80877102) { /* CancelRequest: count it and hang up */
		atomic_fetch_add(&f->cancels, 1);
		return;
	}
	buf[len - 4 < sizeof(buf) ? len - 4 : sizeof(buf) - 1] = '\0';
	const char *options = pg_startup_value(buf, len - 4, "options");
	snprintf(f->options, sizeof(f->options), "%s", options ? options : "");
	send_msg(fd, 'R', "\0\0\0\0", 4); /* AuthenticationOk */
	send_msg(fd, 'Z', "I", 1);
	while (!atomic_load(&f->stop) && read_full(f, fd, &type, 1) && read_full(f, fd, &len, 4)) {
		len = ntohl(len);
		if (len < 4 || len - 4 >= sizeof(buf) || !read_full(f, fd, buf, len - 4))
			return;
		buf[len - 4] = '\0';
		if (type == 'X')
			return;
		if (!f->silent && type == 'Q')
			answer_query(fd, buf);
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = {.fd = f->lfd, .events = POLLIN};
		int fd;
		if (poll(&p, 1, 50) <= 0 || (fd = accept(f->lfd, NULL, NULL)) < 0)
			continue;
		/* One connection at a time is enough here: the test's own, then
		 * its cancel request, which comes once the test gave up on it. */
		struct timeval tv = {.tv_usec = 100000};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		serve(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f, bool silent)
{
	memset(f, 0, sizeof(*f));
	f->silent = silent;
	f->lfd = listen_frozen(&f->port);
	ck_assert_int_eq(pthread_create(&f->tid, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->tid, NULL);
	close(f->lfd);
}

/* ---- time limits ---- */

START_TEST(connect_gives_up_at_the_deadline)
{
	struct db_params p;
	struct timespec deadline = clock_deadline(200);
	char err[256] = "";
	int port, lfd = listen_frozen(&port);
	PGconn *conn;

	params_for(&p, port);
	conn = db_connect_until(&p, &deadline, err, sizeof(err));
	ck_assert_ptr_null(conn);
	ck_assert_msg(strstr(err, "no connection") != NULL, "%s", err);

	/* Without a deadline: DB_CONNECT_TIMEOUT_MS. */
	p.connect_timeout_ms = 200;
	conn = db_connect(&p, err, sizeof(err));
	ck_assert_ptr_null(conn);
	ck_assert_msg(strstr(err, "within 200 ms") != NULL, "%s", err);
	close(lfd);
}
END_TEST

START_TEST(connect_refused_says_why)
{
	struct db_params p;
	char err[256] = "";
	int port, lfd = listen_frozen(&port);

	close(lfd); /* nobody listens there any more */
	params_for(&p, port);
	ck_assert_ptr_null(db_connect(&p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "refused") != NULL, "%s", err);
}
END_TEST

/* With several hosts, one that accepts and never answers (frozen) gets its
 * share of the time, and the next one is tried before the deadline. */
START_TEST(connect_leaves_a_frozen_host_for_the_next)
{
	struct db_params p;
	struct fake f;
	char err[256] = "";
	int frozen_port, lfd = listen_frozen(&frozen_port);
	PGconn *conn;

	fake_start(&f, false);
	params_for(&p, 0);
	snprintf(p.url, sizeof(p.url),
	         "postgresql://127.0.0.1:%d,127.0.0.1:%d/db?sslmode=disable&gssencmode=disable",
	         frozen_port, f.port);
	p.connect_timeout_ms = 4000;
	conn = db_connect(&p, err, sizeof(err));
	ck_assert_msg(conn != NULL, "%s", err);
	ck_assert_int_eq(atoi(PQport(conn)), f.port);
	PQfinish(conn);

	/* A caller's deadline shorter than connect_timeout_ms (a pooled
	 * request's) is what is shared out. */
	p.connect_timeout_ms = 0;
	struct timespec deadline = clock_deadline(2000);
	conn = db_connect_until(&p, &deadline, err, sizeof(err));
	ck_assert_msg(conn != NULL, "%s", err);
	PQfinish(conn);
	fake_stop(&f);
	close(lfd);
}
END_TEST

/* Both frozen: the attempt still ends at the deadline. */
START_TEST(connect_with_every_host_frozen_gives_up_at_the_deadline)
{
	struct db_params p;
	char err[256] = "";
	int port1, port2, lfd1 = listen_frozen(&port1), lfd2 = listen_frozen(&port2);
	const long start = clock_mono_ms();

	params_for(&p, 0);
	snprintf(p.url, sizeof(p.url), "postgresql://127.0.0.1:%d,127.0.0.1:%d/db?sslmode=disable",
	         port1, port2);
	p.connect_timeout_ms = 600;
	ck_assert_ptr_null(db_connect(&p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "within 600 ms") != NULL, "%s", err);
	/* The second host was tried: its listener holds a connection. */
	struct pollfd pending = {.fd = lfd2, .events = POLLIN};
	ck_assert_int_eq(poll(&pending, 1, 0), 1);
	ck_assert_int_ge(clock_mono_ms() - start, 600);
	close(lfd1);
	close(lfd2);
}
END_TEST

/* session_attrs overrides the URL's target_session_attrs: the consumer
 * asks for read-write whatever DB_URL says, and a read-only server (the
 * fake says transaction_read_only is on) is refused. */
START_TEST(connect_session_attrs_override_the_url)
{
	struct db_params p;
	struct fake f;
	char err[256] = "";
	PGconn *conn;

	fake_start(&f, false);
	params_for(&p, f.port);
	snprintf(p.url, sizeof(p.url),
	         "postgresql://127.0.0.1:%d/db?sslmode=disable&gssencmode=disable"
	         "&target_session_attrs=any",
	         f.port);
	conn = db_connect(&p, err, sizeof(err));
	ck_assert_msg(conn != NULL, "%s", err);
	PQfinish(conn);

	p.session_attrs = "read-write";
	ck_assert_ptr_null(db_connect(&p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "read-only") != NULL, "%s", err);
	fake_stop(&f);
}
END_TEST

/* A service's own session settings follow ours, and reach the server;
 * more than the start-up packet's room is refused, saying so. */
START_TEST(connect_sends_the_session_options)
{
	struct db_params p;
	struct fake f;
	char err[256] = "", longer[300];
	PGconn *conn;

	fake_start(&f, false);
	params_for(&p, f.port);
	p.statement_timeout_ms = 1500;
	conn = db_connect(&p, err, sizeof(err));
	ck_assert_msg(conn != NULL, "%s", err);
	PQfinish(conn);
	fake_stop(&f);
	ck_assert_str_eq(f.options, "-c TimeZone=UTC -c statement_timeout=1500");

	fake_start(&f, false);
	params_for(&p, f.port);
	p.statement_timeout_ms = 1500;
	p.options = "-c plan_cache_mode=force_generic_plan";
	conn = db_connect(&p, err, sizeof(err));
	ck_assert_msg(conn != NULL, "%s", err);
	PQfinish(conn);
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	p.options = longer;
	ck_assert_ptr_null(db_connect(&p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "session options longer than") != NULL, "%s", err);
	fake_stop(&f);
	ck_assert_str_eq(f.options, "-c TimeZone=UTC -c statement_timeout=1500 "
	                            "-c plan_cache_mode=force_generic_plan");
}
END_TEST

/* Which call a loop test makes. */
static PGresult *call(int which, PGconn *conn, const struct timespec *deadline, char *err,
                      size_t size)
{
	switch (which) {
	case 0: return db_exec(conn, "SELECT 1", deadline, err, size);
	case 1: return db_prepare(conn, "s", "SELECT 1", 0, deadline, err, size);
	default: return db_exec_prepared(conn, "s", 0, NULL, 1, deadline, err, size);
	}
}

START_TEST(statement_gives_up_at_the_deadline_and_is_cancelled)
{
	struct fake f;
	struct db_params p;
	struct timespec deadline;
	char err[256] = "";
	PGconn *conn;
	PGresult *res;

	fake_start(&f, true);
	params_for(&p, f.port);
	conn = db_connect(&p, err, sizeof(err));
	ck_assert_msg(conn != NULL, "%s", err);
	deadline = clock_deadline(200);
	res = call(_i, conn, &deadline, err, sizeof(err));
	ck_assert_ptr_null(res);
	ck_assert_msg(strstr(err, "no answer") != NULL, "%s", err);
	PQfinish(conn);
	/* The cancel request comes from another thread: wait for it (a
	 * generous bound; it normally takes a millisecond). */
	for (int i = 0; i < 1000 && atomic_load(&f.cancels) == 0; i++)
		usleep(10000);
	ck_assert_int_eq(atomic_load(&f.cancels), 1);
	fake_stop(&f);
}
END_TEST

START_TEST(statement_answers_and_errors_keep_the_server_text)
{
	struct fake f;
	struct db_params p;
	struct timespec deadline = clock_deadline(10000);
	char err[256] = "";
	PGconn *conn;
	PGresult *res;

	fake_start(&f, false);
	params_for(&p, f.port);
	conn = db_connect(&p, err, sizeof(err));
	ck_assert_msg(conn != NULL, "%s", err);
	res = db_exec(conn, "SELECT 1", &deadline, err, sizeof(err));
	ck_assert_msg(res != NULL, "%s", err);
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "1");
	PQclear(res);

	/* An error is a result, as with PQexec: its text and SQLSTATE are there. */
	res = db_exec(conn, "SELECT * FROM nothing", &deadline, err, sizeof(err));
	ck_assert_msg(res != NULL, "%s", err);
	ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
	ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42P01");
	ck_assert_ptr_nonnull(strstr(PQresultErrorMessage(res), "does not exist"));
	PQclear(res);

	/* The connection is still in use after both. */
	res = db_exec(conn, "SELECT 1", &deadline, err, sizeof(err));
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	PQclear(res);
	PQfinish(conn);
	ck_assert_int_eq(atomic_load(&f.cancels), 0);
	fake_stop(&f);
}
END_TEST

START_TEST(statement_deadline_is_the_timeout_and_a_grace)
{
	struct db_params p = {.statement_timeout_ms = 3000};
	struct timespec lo = clock_deadline(3000 + DB_ANSWER_GRACE_MS), d = db_statement_deadline(&p),
	                hi;

	hi = clock_deadline(3000 + DB_ANSWER_GRACE_MS);
	ck_assert(d.tv_sec > lo.tv_sec || (d.tv_sec == lo.tv_sec && d.tv_nsec >= lo.tv_nsec));
	ck_assert(d.tv_sec < hi.tv_sec || (d.tv_sec == hi.tv_sec && d.tv_nsec <= hi.tv_nsec));
}
END_TEST

Suite *make_db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc;

	tc = tcase_create("url_convert");
	tcase_add_loop_test(tc, convert_accepts, 0, TABLE_LEN(converted));
	tcase_add_loop_test(tc, convert_refuses_with_reason, 0, TABLE_LEN(refused));
	tcase_add_loop_test(tc, convert_reason_names_what_is_wrong, 0, TABLE_LEN(reasons));
	tcase_add_test(tc, convert_refuses_too_long_for_the_buffer);
	tcase_add_loop_test(tc, convert_reason_never_shows_the_password, 0, TABLE_LEN(secret_urls));
	suite_add_tcase(s, tc);

	tc = tcase_create("error_line");
	tcase_add_test(tc, error_line_is_one_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("deadline");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, connect_gives_up_at_the_deadline);
	tcase_add_test(tc, connect_refused_says_why);
	tcase_add_test(tc, connect_leaves_a_frozen_host_for_the_next);
	tcase_add_test(tc, connect_with_every_host_frozen_gives_up_at_the_deadline);
	tcase_add_test(tc, connect_session_attrs_override_the_url);
	tcase_add_test(tc, connect_sends_the_session_options);
	tcase_add_loop_test(tc, statement_gives_up_at_the_deadline_and_is_cancelled, 0, 3);
	tcase_add_test(tc, statement_answers_and_errors_keep_the_server_text);
	tcase_add_test(tc, statement_deadline_is_the_timeout_and_a_grace);
	suite_add_tcase(s, tc);

	return s;
}
