/*
 * bench_get.c - GETs many machines from a vmlabd and checks each digest.
 *
 * usage: bench_get PORT FILE CONNECTIONS
 *
 * FILE has one line per machine, `PATH DIGEST` (PATH as in
 * /v1/machines/r7). CONNECTIONS threads each keep one connection to
 * 127.0.0.1:PORT and GET every CONNECTIONS-th path in turn; every
 * answer must be 200 and carry "digest":"DIGEST". Prints `checked N` and
 * exits 0, or names the first wrong answer and exits 1.
 *
 * It is the restart phase's client: the figure is how long the daemon
 * takes to answer for all its machines, and a client that costs more per
 * request than the daemon would measure itself instead.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct item {
	char path[128];
	char digest[32];
};

static struct item *items;
static size_t nitems, nconns;
static int port;
static atomic_int failed;
static atomic_size_t checked;

static void fail(const char *what, const struct item *it, const char *got)
{
	if (atomic_exchange(&failed, 1) == 0)
		fprintf(stderr, "bench_get: %s: %s%s%.300s\n", it->path, what,
			got ? ": " : "", got ? got : "");
}

static int connect_local(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("bench_get: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Reads one answer into buf (NUL-terminated): its status, or -1. */
static int read_answer(int fd, char *buf, size_t cap, char **body)
{
	size_t len = 0, want = 0;
	char *end = NULL, *cl;

	for (;;) {
		ssize_t n;

		if (end && len >= want)
			break;
		if (len + 1 >= cap)
			return -1;
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			cl = strcasestr(buf, "\r\ncontent-length:");
			if (!cl || cl > end)
				return -1;
			want = (size_t)(end + 4 - buf) +
			       strtoul(cl + 17, NULL, 10);
		}
	}
	*body = end + 4;
	return atoi(buf + 9);
}

static void *worker(void *arg)
{
	size_t t = (size_t)(uintptr_t)arg;
	static _Thread_local char buf[1 << 16];
	int fd = connect_local();

	for (size_t i = t; i < nitems && !failed; i += nconns) {
		const struct item *it = &items[i];
		char req[256], want[64], *body;
		int n = snprintf(req, sizeof(req),
				 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
				 it->path);

		if (write(fd, req, (size_t)n) != n) {
			fail("write failed", it, NULL);
			break;
		}
		if (read_answer(fd, buf, sizeof(buf), &body) != 200) {
			fail("not a 200 answer", it, buf);
			break;
		}
		snprintf(want, sizeof(want), "\"digest\":\"%s\"", it->digest);
		if (!strstr(body, want)) {
			fail("not the digest it had", it, body);
			break;
		}
		atomic_fetch_add(&checked, 1);
	}
	close(fd);
	return NULL;
}

static void load(const char *file)
{
	FILE *f = fopen(file, "r");
	size_t cap = 1024;
	char line[256];

	items = malloc(cap * sizeof(*items));
	if (!f || !items) {
		perror(file);
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		if (nitems == cap) {
			cap *= 2;
			items = realloc(items, cap * sizeof(*items));
			if (!items)
				abort();
		}
		if (sscanf(line, "%127s %31s", items[nitems].path,
			   items[nitems].digest) == 2)
			nitems++;
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	pthread_t th[256];

	if (argc != 4) {
		fprintf(stderr, "usage: bench_get PORT FILE CONNECTIONS\n");
		return 2;
	}
	port = atoi(argv[1]);
	nconns = strtoul(argv[3], NULL, 10);
	if (port <= 0 || port > 65535 || nconns < 1 || nconns > 256) {
		fprintf(stderr, "bench_get: bad port or connection count\n");
		return 2;
	}
	load(argv[2]);
	for (size_t t = 0; t < nconns; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
			abort();
	for (size_t t = 0; t < nconns; t++)
		pthread_join(th[t], NULL);
	if (failed)
		return 1;
	printf("checked %zu\n", (size_t)checked);
	return checked == nitems ? 0 : 1;
}
