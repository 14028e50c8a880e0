/*
 * vmlabd.c - the daemon: options, the HTTP front end, signals.
 *
 * libmicrohttpd with an internal epoll thread pool moves bytes; the API
 * (api_dispatch) does everything else. Per-request state lives in *req_cls
 * from the first call (the URI log callback makes it, so the raw query
 * string is kept); the body accumulates up to --max-body, and a body
 * announced larger by Content-Length is refused with 413 before it is
 * read. SIGTERM and SIGINT stop accepting, let requests in flight (their
 * headers in) finish, snapshot the changed machines and exit 0. What
 * bounds slow and abusive clients, and what is left to a reverse proxy:
 * docs/hardening.md.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "api/api.h"
#include "db/db.h"
#include "store.h"
#include "tenants.h"
#include "metrics.h"
#ifdef VMLAB_FAULT_VFS
/* The test build: the database through a fault-injecting VFS. */
#include "db/faultvfs.h"
#endif

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.0.0"
#endif

extern const char vmlab_openapi[];
extern const size_t vmlab_openapi_len;

struct options {
	char listen[128];
	const char *db;
	unsigned threads;
	size_t max_body;
	size_t max_machines;
	uint64_t max_memory;
	enum db_durability durability;
	bool group_commit;
	unsigned max_connections;
	bool max_connections_given;
	unsigned per_ip;          /* connections from one address; 0: any */
	unsigned timeout;
	int auth;                 /* 1 on, 0 off, -1 not given */
	const char *admin_token_file;
};

struct server {
	struct options opt;
	atomic_int inflight;      /* requests whose headers are in and whose
				   * answer is not yet sent */
	struct api_ctx api;
	struct store *store;
	struct tenants *tenants;
	struct metrics *metrics;
};

struct request {
	struct server *server;
	struct MHD_Connection *conn;
	char *query;          /* raw, after '?', or NULL */
	char *body;
	size_t len, cap;
	bool started;         /* the first call (headers only) is done */
	bool too_large;
	bool answered;
	/*
	 * A mutation waiting for its group commit: the answer is held.
	 * Under mu: `ready` once the commit is settled, `suspended` once the
	 * connection is parked (resume only what was suspended).
	 */
	struct api_response held;
	pthread_mutex_t mu;
	bool ready, suspended;
	struct timespec start;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmlabd [options]\n"
		"\n"
		"Hosts simulated Linux machines behind a REST/JSON API.\n"
		"\n"
		"  --listen ADDR:PORT    address to serve on (default "
		"127.0.0.1:8080;\n"
		"                        port 0 picks a free port; another "
		"address\n"
		"                        than loopback needs --auth on)\n"
		"  --auth on|off         bearer tokens and tenants (default "
		"off: every\n"
		"                        request acts as the admin; loopback "
		"only)\n"
		"  --admin-token-file FILE  the admin's token, read if FILE "
		"exists,\n"
		"                        else generated there with mode 0600 "
		"(default\n"
		"                        the database's path + "
		"\".admin-token\")\n"
		"  --db FILE             the SQLite database of machines "
		"(default\n"
		"                        vmlab.db, created when absent)\n"
		"  --durability MODE     full (default: every acknowledged "
		"change is\n"
		"                        on disk) or normal (faster; a power "
		"loss may\n"
		"                        take back the last changes)\n"
		"  --group-commit on|off many mutations per transaction (on, "
		"default),\n"
		"                        or one transaction each (off; for "
		"comparison)\n"
		"  --threads N           HTTP worker threads (default: CPUs)\n"
		"  --max-body BYTES      largest request body (default 1 MiB)\n"
		"  --max-machines N      most machines held (default 10000)\n"
		"  --max-memory BYTES    largest x86_64 machine RAM (default "
		"64 GiB)\n"
		"  --max-connections N   open connections (default 2048; "
		"more wait in\n"
		"                        the listen queue; refused if the "
		"open-file\n"
		"                        limit cannot hold them)\n"
		"  --max-connections-per-ip N  open connections from one "
		"address\n"
		"                        (default 0: no limit, as a class "
		"behind NAT\n"
		"                        or a reverse proxy is one address)\n"
		"  --timeout SECONDS     close a connection idle this long "
		"(default 30;\n"
		"                        any byte in or out restarts it)\n"
		"  --help                this text\n"
		"  --version             the version\n");
}

static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (strcasecmp(end, "k") == 0 || strcmp(end, "KiB") == 0)
		x <<= 10;
	else if (strcasecmp(end, "m") == 0 || strcmp(end, "MiB") == 0)
		x <<= 20;
	else if (strcasecmp(end, "g") == 0 || strcmp(end, "GiB") == 0)
		x <<= 30;
	else if (*end)
		return -1;
	*v = x;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "db", required_argument, NULL, 'd' },
		{ "durability", required_argument, NULL, 'D' },
		{ "group-commit", required_argument, NULL, 'g' },
		{ "threads", required_argument, NULL, 't' },
		{ "max-body", required_argument, NULL, 'b' },
		{ "max-machines", required_argument, NULL, 'm' },
		{ "max-memory", required_argument, NULL, 'M' },
		{ "max-connections", required_argument, NULL, 'c' },
		{ "max-connections-per-ip", required_argument, NULL, 'P' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "auth", required_argument, NULL, 'a' },
		{ "admin-token-file", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int ch;
	uint64_t v;

	snprintf(o->listen, sizeof(o->listen), "127.0.0.1:8080");
	o->db = "vmlab.db";
	o->threads = cpus > 0 ? (unsigned)cpus : 1;
	o->max_body = 1 << 20;
	o->max_machines = 10000;
	o->max_memory = 64ULL << 30;
	o->max_connections = 2048;
	o->group_commit = true;
	o->timeout = 30;
	o->auth = -1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			snprintf(o->listen, sizeof(o->listen), "%s", optarg);
			break;
		case 'd':
			o->db = optarg;
			break;
		case 'a':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "vmlabd: --auth is on or off\n");
				return -1;
			}
			o->auth = strcmp(optarg, "on") == 0;
			break;
		case 'A':
			o->admin_token_file = optarg;
			break;
		case 'g':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "vmlabd: --group-commit is on "
					"or off\n");
				return -1;
			}
			o->group_commit = strcmp(optarg, "on") == 0;
			break;
		case 'D':
			if (strcmp(optarg, "full") == 0) {
				o->durability = DB_FULL;
			} else if (strcmp(optarg, "normal") == 0) {
				o->durability = DB_NORMAL;
			} else {
				fprintf(stderr, "vmlabd: --durability is full "
					"or normal\n");
				return -1;
			}
			break;
		case 'P':
			/* 0 is allowed here: no limit. */
			if (parse_size(optarg, &v) || v > 1000000) {
				fprintf(stderr, "vmlabd: bad value \"%s\"\n",
					optarg);
				return -1;
			}
			o->per_ip = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("vmlabd %s (model %d)\n", PACKAGE_VERSION,
			       VM_MODEL_VERSION);
			exit(0);
		case '?':
			usage(stderr);
			return -1;
		default:
			if (parse_size(optarg, &v) || v == 0) {
				fprintf(stderr, "vmlabd: bad value \"%s\"\n",
					optarg);
				return -1;
			}
			if (ch == 't')
				o->threads = v > 256 ? 256 : (unsigned)v;
			else if (ch == 'b')
				o->max_body = (size_t)v;
			else if (ch == 'm')
				o->max_machines = (size_t)v;
			else if (ch == 'M')
				o->max_memory = v;
			else if (ch == 'c')
				o->max_connections = v > 1000000
					? 1000000 : (unsigned)v;
			else if (ch == 'T')
				o->timeout = (unsigned)v;
			o->max_connections_given |= ch == 'c';
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vmlabd: unexpected argument \"%s\"\n",
			argv[optind]);
		return -1;
	}
	return 0;
}

/*
 * Descriptors the daemon holds besides its connections: stdio, the
 * listen socket, SQLite's database, journal, WAL and shared memory (and
 * the loaders' own while machines load), libsodium's, and slack; each
 * HTTP worker adds its epoll and wake-up descriptors.
 */
#define FD_RESERVE 64

/*
 * Every connection is a descriptor: raise the soft RLIMIT_NOFILE toward
 * the hard one as far as --max-connections needs. A limit that cannot
 * hold them refuses an explicit --max-connections and lowers the
 * default, so that accept() never fails with EMFILE (libmicrohttpd then
 * stops accepting and warns, rather than queueing cleanly).
 */
static int fd_limit(struct options *o)
{
	rlim_t reserve = FD_RESERVE + 2 * (rlim_t)o->threads;
	rlim_t want = o->max_connections + reserve;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
			      rl.rlim_max > want ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return 0;
	if (o->max_connections_given || rl.rlim_cur <= reserve) {
		fprintf(stderr, "vmlabd: --max-connections %u needs %llu open "
			"files, and this process may open %llu (hard limit "
			"%llu): give --max-connections %llu or fewer, or raise "
			"the limit (ulimit -n, or LimitNOFILE= in a systemd "
			"unit)\n", o->max_connections,
			(unsigned long long)want,
			(unsigned long long)rl.rlim_cur,
			(unsigned long long)rl.rlim_max,
			rl.rlim_cur > reserve
				? (unsigned long long)(rl.rlim_cur - reserve)
				: 0ULL);
		return -1;
	}
	o->max_connections = (unsigned)(rl.rlim_cur - reserve);
	fprintf(stderr, "vmlabd: %llu open files at most (ulimit -n): "
		"holding %u connections instead of the default\n",
		(unsigned long long)rl.rlim_cur, o->max_connections);
	return 0;
}

/* Resolves ADDR:PORT (or [ADDR6]:PORT) numerically; loopback only. */
static int listen_addr(const char *spec, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	char host[96];
	const char *port, *colon;
	struct addrinfo hints, *res;
	int rc;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':')
			return -1;
		snprintf(host, sizeof(host), "%.*s", (int)(close - spec - 1),
			 spec + 1);
		port = close + 2;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -1;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
		port = colon + 1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct server *s = cls;
	struct request *r = calloc(1, sizeof(*r));
	const char *q;

	if (!r)
		abort();
	r->server = s;
	r->conn = conn;
	pthread_mutex_init(&r->mu, NULL);
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	q = uri ? strchr(uri, '?') : NULL;
	if (q) {
		r->query = strdup(q + 1);
		if (!r->query)
			abort();
	}
	return r;
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct request *r = *req_cls;

	(void)conn;
	(void)toe;
	if (!r)
		return;
	if (r->started)
		atomic_fetch_sub(&s->inflight, 1);
	free(r->query);
	free(r->body);
	api_response_release(&r->held);
	pthread_mutex_destroy(&r->mu);
	free(r);
	*req_cls = NULL;
}

/*
 * What answers one connection may hold in the kernel while its client
 * does not read them. Linux grows a socket's send buffer up to
 * net.ipv4.tcp_wmem's largest (4 MiB by default), so that 2048 clients
 * that never read could pin 8 GiB of the host's memory; with this (the
 * kernel doubles it) they pin 1 GiB at most, and the largest answer,
 * /v1/openapi.json, still goes out in one write.
 */
#define SEND_BUFFER (256 * 1024)

static void connection_cb(void *cls, struct MHD_Connection *conn,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct server *s = cls;
	const union MHD_ConnectionInfo *ci;
	int size = SEND_BUFFER;

	(void)socket_context;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
		metrics_connection(s->metrics, -1);
		return;
	}
	metrics_connection(s->metrics, 1);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &size,
			   sizeof(size));
}

/*
 * libmicrohttpd's messages. Only one is wanted: a connection accepted
 * and closed at once because its address (--max-connections-per-ip) or
 * the daemon is at its limit, which no callback reports. The rest are
 * not printed: a client can provoke them at will.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	static const char limit[] = "Server reached connection limit";
	struct server *s = cls;

	(void)ap;
	if (strncmp(fmt, limit, sizeof(limit) - 1) == 0)
		metrics_connection_refused(s->metrics);
}

static enum MHD_Result send_response(struct server *s,
				     struct MHD_Connection *conn,
				     struct request *r,
				     struct api_response *resp)
{
	struct MHD_Response *mr;
	enum MHD_Result ret;
	struct timespec now;
	uint64_t us;

	mr = MHD_create_response_from_buffer(resp->body_len, resp->body,
					     MHD_RESPMEM_MUST_FREE);
	resp->body = NULL; /* the response owns it now */
	if (!mr)
		return MHD_NO;
	if (resp->content_type)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
					resp->content_type);
	for (unsigned i = 0; i < resp->nheaders; i++)
		MHD_add_response_header(mr, resp->headers[i].name,
					resp->headers[i].value);
	ret = MHD_queue_response(conn, (unsigned)resp->status, mr);
	MHD_destroy_response(mr);
	r->answered = true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (uint64_t)(now.tv_sec - r->start.tv_sec) * 1000000u +
	     (uint64_t)((now.tv_nsec - r->start.tv_nsec) / 1000);
	metrics_request(s->metrics, resp->route, resp->status, us);
	return ret;
}

/* A problem answer built outside the API (413 before reading). */
static enum MHD_Result too_large(struct server *s,
				 struct MHD_Connection *conn,
				 struct request *r)
{
	struct api_response resp;
	char *body = malloc(512);
	int n;

	if (!body)
		abort();
	n = snprintf(body, 512,
		     "{\"type\":\"/problems/payload_too_large\",\"title\":"
		     "\"Request body too large\",\"status\":413,\"detail\":"
		     "\"this server takes bodies up to %zu bytes\",\"code\":"
		     "\"payload_too_large\"}", s->opt.max_body);
	memset(&resp, 0, sizeof(resp));
	resp.status = 413;
	resp.content_type = "application/problem+json";
	resp.body = body;
	resp.body_len = (size_t)n;
	resp.route = "payload_too_large";
	return send_response(s, conn, r, &resp);
}

/*
 * The store's thread: the group holding this request's operation is
 * committed (ok) or refused; the held answer goes out, or a problem.
 */
static void commit_done(void *cls, bool ok, const struct api_problem *p)
{
	struct request *r = cls;

	pthread_mutex_lock(&r->mu);
	if (!ok)
		api_problem_response(&r->held, p);
	r->ready = true;
	if (r->suspended) {
		r->suspended = false;
		MHD_resume_connection(r->conn);
	}
	pthread_mutex_unlock(&r->mu);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct server *s = cls;
	struct request *r = *req_cls;
	struct api_request req;
	struct api_response resp;
	const char *cl;

	(void)version;
	if (!r)
		return MHD_NO;
	if (r->answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&r->mu);
	if (r->ready) {
		struct api_response held = r->held;

		memset(&r->held, 0, sizeof(r->held));
		r->ready = false;
		pthread_mutex_unlock(&r->mu);
		return send_response(s, conn, r, &held);
	}
	pthread_mutex_unlock(&r->mu);
	if (!r->started) {
		/* First call: refuse an announced oversized body unread. */
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						  MHD_HTTP_HEADER_CONTENT_LENGTH);
		/*
		 * Begun only now, with its headers in: a shutdown waits for
		 * this request, not for one still sending its headers.
		 */
		r->started = true;
		atomic_fetch_add(&s->inflight, 1);
		if (cl && strtoull(cl, NULL, 10) > s->opt.max_body)
			return too_large(s, conn, r);
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		if (r->len + n > s->opt.max_body) {
			r->too_large = true;
		} else if (!r->too_large) {
			if (r->len + n + 1 > r->cap) {
				size_t cap = r->cap < 1024 ? 1024 : r->cap;

				while (cap < r->len + n + 1)
					cap *= 2;
				r->body = realloc(r->body, cap);
				if (!r->body)
					abort();
				r->cap = cap;
			}
			memcpy(r->body + r->len, upload_data, n);
			r->len += n;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->too_large)
		return too_large(s, conn, r);
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.query = r->query;
	req.content_type = MHD_lookup_connection_value(
		conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	req.if_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_IF_MATCH);
	req.authorization = MHD_lookup_connection_value(
		conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	req.body = r->body ? r->body : "";
	req.body_len = r->len;
	if (s->opt.group_commit) {
		req.commit_done = commit_done;
		req.commit_cls = r;
	}
	api_dispatch(&s->api, &req, &resp);
	if (resp.pending) {
		/* Answered once durable: park the connection meanwhile,
		 * unless the commit has already been settled. */
		pthread_mutex_lock(&r->mu);
		if (r->ready) {
			if (r->held.status) {
				/* Settled as a refusal before we got here. */
				const char *route = resp.route;

				api_response_release(&resp);
				resp = r->held;
				resp.route = route;
			} else {
				api_response_release(&r->held);
			}
			memset(&r->held, 0, sizeof(r->held));
			r->ready = false;
			pthread_mutex_unlock(&r->mu);
			return send_response(s, conn, r, &resp);
		}
		r->held = resp;
		r->suspended = true;
		MHD_suspend_connection(conn);
		pthread_mutex_unlock(&r->mu);
		return MHD_YES;
	}
	return send_response(s, conn, r, &resp);
}

int main(int argc, char **argv)
{
	struct server s;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct api_config cfg;
	sigset_t set;
	int sig;
	char admin_token[API_TOKEN_MAX + 1] = "";

	memset(&s, 0, sizeof(s));
	if (parse_options(argc, argv, &s.opt) || fd_limit(&s.opt))
		return 2;
	if (listen_addr(s.opt.listen, &ss, &sslen)) {
		fprintf(stderr, "vmlabd: --listen %s: give a numeric "
			"ADDRESS:PORT such as 127.0.0.1:8080\n", s.opt.listen);
		return 2;
	}
	if (!is_loopback(&ss) && s.opt.auth != 1) {
		fprintf(stderr, "vmlabd: refusing to listen on %s without "
			"authentication: add --auth on (or listen on a loopback "
			"address: 127.0.0.0/8, ::1)\n", s.opt.listen);
		return 2;
	}
	if (s.opt.auth == 1) {
		char path[4096], why[4352];

		if (!s.opt.admin_token_file) {
			snprintf(path, sizeof(path), "%s.admin-token",
				 s.opt.db);
			s.opt.admin_token_file = path;
		}
		if (tenants_admin_token(s.opt.admin_token_file, admin_token,
					why, sizeof(why))) {
			fprintf(stderr, "vmlabd: --admin-token-file: %s\n",
				why);
			return 2;
		}
		s.opt.admin_token_file = NULL; /* path is gone after here */
	}
	/*
	 * Threads inherit this mask (the committer is started with the
	 * store, the HTTP threads with the daemon); only main takes the
	 * signals.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
#ifdef VMLAB_FAULT_VFS
	sigaddset(&set, SIGUSR1); /* a simulated power loss */
#endif
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	{
		char why[DB_ERROR_MAX + 256] = "";
		const char *vfs = NULL;
		struct db *db;

#ifdef VMLAB_FAULT_VFS
		sigset_t usr1;

		/* Blocked before any thread starts, so that only main's
		 * sigwait takes it. */
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
		if (getenv("VMLAB_FAULT")) {
			if (faultvfs_register(getenv("VMLAB_FAULT"))) {
				fprintf(stderr, "vmlabd: VMLAB_FAULT=%s: not a "
					"fault spec\n", getenv("VMLAB_FAULT"));
				return 2;
			}
			vfs = FAULTVFS_NAME;
		}
#endif
		db = db_open(s.opt.db, s.opt.durability, vfs, why);
		if (!db) {
			fprintf(stderr, "vmlabd: cannot use the database %s\n"
				"vmlabd: the file was left as it is\n", why);
			return 1;
		}
		s.store = store_create(db, s.opt.max_machines, 100000);
		if (store_load(s.store, why, sizeof(why))) {
			fprintf(stderr, "vmlabd: cannot load %s: %s\n",
				s.opt.db, why);
			store_free(s.store);
			return 1;
		}
		s.tenants = tenants_create(s.store, s.opt.auth == 1
							 ? admin_token : NULL);
		sodium_memzero(admin_token, sizeof(admin_token));
		if (!s.tenants || tenants_load(s.tenants, why, sizeof(why))) {
			fprintf(stderr, "vmlabd: cannot load the tenants of "
				"%s: %s\n", s.opt.db,
				s.tenants ? why : "libsodium cannot start");
			tenants_free(s.tenants);
			store_free(s.store);
			return 1;
		}
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_machines = s.opt.max_machines;
	cfg.max_memory = s.opt.max_memory;
	cfg.openapi = vmlab_openapi;
	cfg.openapi_len = vmlab_openapi_len;
	cfg.version = PACKAGE_VERSION;
	s.api.store = store_api(s.store);
	s.api.config = cfg;
	s.api.auth = s.opt.auth == 1;
	s.api.tenants = tenants_api(s.tenants);
	s.metrics = metrics_create(s.api.store);
	metrics_connection_limit(s.metrics, s.opt.max_connections);
	metrics_tenants(s.metrics, tenants_count, s.tenants);
	s.api.metrics = metrics_text;
	s.api.metrics_cls = s.metrics;


	/*
	 * epoll: hundreds of idle connections cost a worker nothing until
	 * one has bytes. The limit is shared out among the workers; one
	 * at its share takes the listen socket out of its epoll set, so a
	 * client beyond the limit waits in the kernel's listen queue until
	 * a connection closes. The timeout is an idle timeout (MHD restarts
	 * it at every byte read or written).
	 */
	d = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG |
			(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, handle, &s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, s.opt.threads,
		MHD_OPTION_CONNECTION_LIMIT, s.opt.max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, s.opt.timeout,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, s.opt.per_ip,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &s,
		MHD_OPTION_URI_LOG_CALLBACK, uri_log, &s,
		MHD_OPTION_NOTIFY_COMPLETED, completed, &s,
		MHD_OPTION_NOTIFY_CONNECTION, connection_cb, &s,
		MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "vmlabd: cannot listen on %s: %s\n",
			s.opt.listen, strerror(errno));
		metrics_free(s.metrics);
		tenants_free(s.tenants);
		store_free(s.store);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	fprintf(stderr,
		"vmlabd %s: listening on http://%s%s%s:%u/ with %u threads\n"
		"vmlabd: %zu machines, %zu tenants from %s (durability %s, "
		"auth %s)\n",
		PACKAGE_VERSION, ss.ss_family == AF_INET6 ? "[" : "",
		ss.ss_family == AF_INET6
			? "::1"
			: inet_ntoa(((struct sockaddr_in *)&ss)->sin_addr),
		ss.ss_family == AF_INET6 ? "]" : "",
		info ? info->port : 0, s.opt.threads, store_count(s.store),
		tenants_count(s.tenants), s.opt.db,
		s.opt.durability == DB_FULL ? "full" : "normal",
		s.api.auth ? "on" : "off");
	fflush(stderr);

	while (sigwait(&set, &sig) != 0)
		;
#ifdef VMLAB_FAULT_VFS
	if (sig == SIGUSR1)
		faultvfs_power_loss();
#endif
	fprintf(stderr, "vmlabd: %s: finishing requests in flight\n",
		sig == SIGINT ? "SIGINT" : "SIGTERM");
	/*
	 * Let every request already begun finish and its answer be sent in
	 * full (SPEC part 3), for at most 30 s, then stop. (No
	 * MHD_quiesce_daemon: with an epoll thread pool, libmicrohttpd
	 * 0.9.75 can abort in it when a worker has already taken the listen
	 * socket out of its epoll set.)
	 */
	for (int i = 0; i < 3000 && atomic_load(&s.inflight) > 0; i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	MHD_stop_daemon(d);
	metrics_free(s.metrics);
	tenants_free(s.tenants);
	store_free(s.store);
#ifdef VMLAB_FAULT_VFS
	fprintf(stderr, "vmlabd: %llu syncs\n",
		(unsigned long long)faultvfs_syncs());
#endif
	fprintf(stderr, "vmlabd: stopped\n");
	return 0;
}
