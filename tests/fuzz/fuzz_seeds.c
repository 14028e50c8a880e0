/*
 * fuzz_seeds.c - writes the fuzz targets' seed corpora.
 *
 * usage: fuzz_seeds DIR   (make fuzz-seeds: DIR is tests/fuzz/corpus)
 *
 * Writes DIR/dispatch, DIR/parse, DIR/op and DIR/state, one small file a
 * seed, named for what it holds. Every seed is checked as it is made:
 *
 *   dispatch  a valid request for every route of api/routes.c, in
 *             fuzz_dispatch's framing, answered 2xx on the world of
 *             world.h (run through fuzz_dispatch's own reader of the
 *             framing); a route without a seed, or a seed that is not
 *             answered 2xx by its route, fails the program; seeds named
 *             refused_* are refusals (4xx) worth starting from
 *   op        records (vm_op_serialize) that the starting machine of
 *             fuzz_op applies, alone and in sequences (a kmalloc and its
 *             kfree, pages and their free, a process's life)
 *   state     canonical states (vm_state_serialize) of a small machine
 *             of every arch, fresh and after some operations
 *   parse     typical texts for each of fuzz_parse's parsers
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/internal.h"
#include "core/gfp.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/state.h"
#include "world.h"

static const char *root;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_seeds: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void write_seed(const char *dir, const char *name, const void *buf,
		       size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	if (mkdir(path, 0777) && errno != EEXIST)
		die("%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		die("%s: cannot write", path);
}

/* ---- dispatch: a request for every route ---- */

#define ADMIN "Authorization: Bearer admin-secret\n"
#define ALICE "Authorization: Bearer tok-alice\n"
#define JSON "Content-Type: application/json\n"

struct req {
	const char *name;
	const char *method;    /* "GET" or "GET auth" */
	const char *target;    /* %K, %V, %P, %M: m1's addresses */
	const char *headers;
	const char *body;      /* %K, %V, %P, %M as in target */
};

static const struct req reqs[] = {
	{ "healthz", "GET", "/healthz", "", "" },
	{ "metrics", "GET", "/metrics", "", "" },
	{ "index", "GET", "/v1", "", "" },
	{ "openapi", "GET", "/v1/openapi.json", "", "" },
	{ "whoami", "GET auth", "/v1/whoami", ALICE, "" },
	{ "tenant_create", "POST auth", "/v1/tenants", ADMIN JSON,
	  "{\"name\":\"dave\",\"role\":\"tenant\","
	  "\"quota\":{\"machines\":2}}" },
	{ "tenant_list", "GET auth", "/v1/tenants?page_size=2", ADMIN, "" },
	{ "tenant_delete", "DELETE auth", "/v1/tenants/bob", ADMIN, "" },
	{ "token_issue", "POST auth", "/v1/tenants/alice/tokens", ADMIN, "" },
	{ "machine_create", "POST", "/v1/machines", JSON,
	  "{\"id\":\"m3\",\"arch\":\"i386-pae\",\"memory\":\"32MiB\","
	  "\"cpus\":1,\"seed\":7,\"churn\":8,\"vmsplit\":\"2G/2G\"}" },
	{ "machine_list", "GET", "/v1/machines?page_size=1", "", "" },
	{ "machine_list_owner", "GET auth", "/v1/machines?owner=alice",
	  ADMIN, "" },
	{ "machine_get", "GET", "/v1/machines/m1", "", "" },
	{ "machine_delete", "DELETE", "/v1/machines/m2", "", "" },
	{ "machine_clone", "POST", "/v1/machines/m2/clone", JSON,
	  "{\"id\":\"m2b\"}" },
	{ "share_create", "POST auth", "/v1/machines/lab1/shares", ALICE JSON,
	  "{\"tenant\":\"grader\",\"access\":\"write\"}" },
	{ "share_list", "GET auth", "/v1/machines/lab1/shares", ALICE, "" },
	{ "share_delete", "DELETE auth", "/v1/machines/lab1/shares/bob",
	  ALICE, "" },
	{ "layout", "GET", "/v1/machines/m1/layout", "", "" },
	{ "zones", "GET", "/v1/machines/m1/zones", "", "" },
	{ "frames", "GET", "/v1/machines/m1/frames?start_pfn=0&end_pfn=0x800",
	  "", "" },
	{ "slabs", "GET", "/v1/machines/m1/slabs", "", "" },
	{ "process_create", "POST", "/v1/machines/m1/processes", JSON,
	  "{\"name\":\"p2\",\"heap\":\"8KiB\",\"populate\":false}" },
	{ "process_list", "GET", "/v1/machines/m1/processes?page_size=1", "",
	  "" },
	{ "process_get", "GET", "/v1/machines/m1/processes/1", "", "" },
	{ "process_exit", "DELETE auth", "/v1/machines/lab1/processes/1",
	  ALICE, "" },
	{ "mmap", "POST", "/v1/machines/m1/processes/1/mmap", JSON,
	  "{\"length\":8192,\"prot\":\"r-x\",\"populate\":true}" },
	{ "munmap", "POST", "/v1/machines/m1/processes/1/munmap", JSON,
	  "{\"addr\":\"%M\",\"length\":\"4KiB\"}" },
	{ "brk", "POST", "/v1/machines/m1/processes/1/brk", JSON,
	  "{\"increment\":4096}" },
	{ "pagetable", "GET", "/v1/machines/m1/processes/1/pagetable", "",
	  "" },
	{ "kmalloc", "POST", "/v1/machines/m1/kmalloc", JSON,
	  "{\"size\":\"1KiB\",\"gfp\":\"GFP_KERNEL\"}" },
	{ "kfree", "POST", "/v1/machines/m1/kfree", JSON, "{\"va\":\"%K\"}" },
	{ "vmalloc", "POST", "/v1/machines/m1/vmalloc", JSON,
	  "{\"size\":\"12KiB\",\"guard\":true}" },
	{ "vfree", "POST", "/v1/machines/m1/vfree", JSON, "{\"va\":\"%V\"}" },
	{ "pages", "POST", "/v1/machines/m1/pages", JSON,
	  "{\"order\":2,\"gfp\":\"GFP_KERNEL|__GFP_DMA32\"}" },
	{ "pages_free", "POST", "/v1/machines/m1/pages/free", JSON,
	  "{\"pa\":\"%P\",\"order\":1}" },
	{ "cpus", "GET", "/v1/machines/m1/cpus", "", "" },
	{ "history", "GET", "/v1/machines/m1/history?after=1&page_size=2", "",
	  "" },
	{ "switch", "POST", "/v1/machines/m1/cpus/1/switch",
	  JSON "If-Match: \"6\"\n", "{\"pid\":0}" },
	{ "translate", "POST", "/v1/machines/m1/translate", JSON,
	  "{\"va\":\"%K\",\"mode\":\"kernel\",\"access\":\"read\","
	  "\"explain\":true}" },
	{ "translate_batch", "POST", "/v1/machines/m1/translate/batch", JSON,
	  "{\"items\":[{\"va\":\"%K\",\"mode\":\"kernel\"},"
	  "{\"va\":\"%M\",\"pid\":1,\"access\":\"write\",\"explain\":true},"
	  "{\"va\":4096,\"cpu\":1}]}" },
	{ "dma_check", "POST", "/v1/machines/m1/dma-check", JSON,
	  "{\"va\":\"%K\",\"length\":64,\"dma_mask_bits\":32}" },
	{ "virt_to_phys", "POST", "/v1/machines/m1/virt-to-phys", JSON,
	  "{\"va\":\"%K\"}" },
	{ "phys_to_virt", "POST", "/v1/machines/m1/phys-to-virt", JSON,
	  "{\"pa\":\"%P\"}" },
	{ "shared_read", "GET auth", "/v1/machines/alice.lab1",
	  "Authorization: Bearer tok-bob\n", "" },
	/* Refusals worth starting from: their names say so. */
	{ "refused_rate_limited", "GET auth", "/v1/whoami",
	  "Authorization: bearer  tok-carol \n", "" },
	{ "form_body", "POST", "/v1/machines/m1/kmalloc",
	  "Content-Type: text/plain; charset=utf-8\n", "{\"size\":8}" },
};

/* s with %K, %V, %P and %M replaced by m1's addresses. */
static void expand(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	for (; *s && o + 24 < cap; s++) {
		const char *v = NULL;

		if (s[0] == '%' && s[1] == 'K')
			v = fuzz_m1_kva;
		else if (s[0] == '%' && s[1] == 'V')
			v = fuzz_m1_vva;
		else if (s[0] == '%' && s[1] == 'P')
			v = fuzz_m1_pa;
		else if (s[0] == '%' && s[1] == 'M')
			v = fuzz_m1_map;
		if (v) {
			o += (size_t)snprintf(out + o, cap - o, "%s", v);
			s++;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

static void dispatch_seeds(void)
{
	static struct fuzz_request fr;
	const struct api_route *routes = api_routes();
	size_t nroutes = 0;
	bool *covered;

	fuzz_world_init();
	while (routes[nroutes].method)
		nroutes++;
	covered = calloc(nroutes, sizeof(*covered));
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		const struct req *q = &reqs[i];
		char target[512], body[1024], text[2048], name[64];
		struct api_response r;
		bool refusal;
		int n;

		expand(q->target, target, sizeof(target));
		expand(q->body, body, sizeof(body));
		n = snprintf(text, sizeof(text), "%s\n%s\n%s\n%s", q->method,
			     target, q->headers, body);
		fuzz_request_parse((const uint8_t *)text, (size_t)n, &fr);
		fuzz_ctx.auth = fr.auth;
		api_dispatch(&fuzz_ctx, &fr.rq, &r);
		refusal = strncmp(q->name, "refused_", 8) == 0;
		if (refusal ? r.status < 400 || r.status > 499
			    : r.status < 200 || r.status > 299)
			die("%s: %d %.*s", q->name, r.status,
			    (int)r.body_len, r.body ? r.body : "");
		for (size_t k = 0; k < nroutes && !refusal; k++)
			if (strcmp(routes[k].pattern, r.route) == 0 &&
			    strcmp(routes[k].method, fr.rq.method) == 0)
				covered[k] = true;
		api_response_release(&r);
		fuzz_request_free(&fr);
		fuzz_world_reset();
		snprintf(name, sizeof(name), "%s.req", q->name);
		write_seed("dispatch", name, text, (size_t)n);
	}
	for (size_t k = 0; k < nroutes; k++)
		if (!covered[k])
			die("no seed for %s %s", routes[k].method,
			    routes[k].pattern);
	free(covered);
	printf("dispatch: %zu seeds, all %zu routes\n",
	       sizeof(reqs) / sizeof(reqs[0]), nroutes);
}

/* ---- op: records the starting machine applies ---- */

struct opseq {
	uint8_t buf[4096];
	size_t len;
};

/* Appends op, framed, after applying it to m (it must apply). */
static void add_op(struct opseq *s, struct vm_machine *m,
		   const struct vm_op *op, struct vm_op_result *res)
{
	struct vm_error err = { 0, "" };
	uint8_t *rec;
	size_t n;

	if (vm_machine_apply(m, op, res, &err))
		die("op %s: %s", vm_op_name(op->type), err.detail);
	vm_op_serialize(op, &rec, &n);
	if (n > 255 || s->len + n + 1 > sizeof(s->buf))
		die("op %s: %zu bytes", vm_op_name(op->type), n);
	s->buf[s->len++] = (uint8_t)n;
	memcpy(s->buf + s->len, rec, n);
	s->len += n;
	free(rec);
}

static struct vm_op mk(enum vm_op_type t)
{
	struct vm_op op;

	memset(&op, 0, sizeof(op));
	op.type = t;
	return op;
}

static void op_seeds(void)
{
	struct vm_machine *start = fuzz_op_start(), *m;
	struct vm_op_result r, r2;
	struct vm_op op;
	struct opseq s;
	unsigned n = 0;

	/* A process's life: create, mmap, brk, munmap, switch, exit. */
	m = vm_machine_clone(start);
	memset(&s, 0, sizeof(s));
	op = mk(VM_OP_PROCESS_CREATE);
	strcpy(op.u.create.name, "seed");
	op.u.create.text = 8192;
	op.u.create.data = op.u.create.heap = VM_SEG_DEFAULT;
	op.u.create.stack = VM_SEG_DEFAULT;
	add_op(&s, m, &op, &r);
	op = mk(VM_OP_MMAP);
	op.u.mmap.pid = r.u.create.pid;
	op.u.mmap.length = 16384;
	op.u.mmap.prot = 7;
	op.u.mmap.populate = true;
	add_op(&s, m, &op, &r2);
	op = mk(VM_OP_BRK);
	op.u.brk.pid = r.u.create.pid;
	op.u.brk.increment = 12288;
	add_op(&s, m, &op, NULL);
	op = mk(VM_OP_MUNMAP);
	op.u.munmap.pid = r.u.create.pid;
	op.u.munmap.addr = r2.u.mmap.start + 4096;
	op.u.munmap.length = 4096;
	add_op(&s, m, &op, NULL);
	op = mk(VM_OP_SWITCH);
	op.u.sw.cpu = 0;
	op.u.sw.pid = r.u.create.pid;
	add_op(&s, m, &op, NULL);
	op = mk(VM_OP_SWITCH);
	op.u.sw.cpu = 0;
	add_op(&s, m, &op, NULL);
	op = mk(VM_OP_PROCESS_EXIT);
	op.u.exit.pid = r.u.create.pid;
	add_op(&s, m, &op, NULL);
	write_seed("op", "process_life.ops", s.buf, s.len);
	n++;
	vm_machine_free(m);

	/* kmalloc and kfree; a large kmalloc; DMA. */
	m = vm_machine_clone(start);
	memset(&s, 0, sizeof(s));
	op = mk(VM_OP_KMALLOC);
	op.u.kmalloc.size = 192;
	op.u.kmalloc.gfp = VM_GFP_KERNEL;
	add_op(&s, m, &op, &r);
	op = mk(VM_OP_KMALLOC);
	op.u.kmalloc.size = 64 << 10;
	op.u.kmalloc.gfp = VM_GFP_KERNEL | 0x01;
	add_op(&s, m, &op, &r2);
	op = mk(VM_OP_KFREE);
	op.u.kfree.va = r.u.kmalloc.va;
	add_op(&s, m, &op, NULL);
	op = mk(VM_OP_KFREE);
	op.u.kfree.va = r2.u.kmalloc.va;
	add_op(&s, m, &op, NULL);
	write_seed("op", "kmalloc_kfree.ops", s.buf, s.len);
	n++;
	vm_machine_free(m);

	/* vmalloc and vfree; pages and their free. */
	m = vm_machine_clone(start);
	memset(&s, 0, sizeof(s));
	op = mk(VM_OP_VMALLOC);
	op.u.vmalloc.size = 20480;
	op.u.vmalloc.guard = true;
	add_op(&s, m, &op, &r);
	op = mk(VM_OP_ALLOC_PAGES);
	op.u.alloc_pages.order = 3;
	op.u.alloc_pages.gfp = VM_GFP_KERNEL;
	add_op(&s, m, &op, &r2);
	op = mk(VM_OP_VFREE);
	op.u.vfree.va = r.u.vmalloc.va;
	add_op(&s, m, &op, NULL);
	op = mk(VM_OP_FREE_PAGES);
	op.u.free_pages.pa = r2.u.alloc_pages.pa;
	op.u.free_pages.order = 3;
	add_op(&s, m, &op, NULL);
	write_seed("op", "vmalloc_pages.ops", s.buf, s.len);
	n++;
	vm_machine_free(m);

	/* Every type alone, as the starting machine takes it. */
	{
		struct vm_op one[] = {
			mk(VM_OP_PROCESS_CREATE), mk(VM_OP_MMAP),
			mk(VM_OP_KMALLOC), mk(VM_OP_VMALLOC),
			mk(VM_OP_ALLOC_PAGES), mk(VM_OP_SWITCH),
			mk(VM_OP_BRK),
		};

		strcpy(one[0].u.create.name, "one");
		one[0].u.create.text = one[0].u.create.data = 4096;
		one[0].u.create.heap = one[0].u.create.stack = 4096;
		one[1].u.mmap.pid = 1;
		one[1].u.mmap.length = 4096;
		one[1].u.mmap.prot = 1;
		one[2].u.kmalloc.size = 8;
		one[2].u.kmalloc.gfp = VM_GFP_KERNEL;
		one[3].u.vmalloc.size = 4096;
		one[4].u.alloc_pages.gfp = VM_GFP_HIGHUSER;
		one[5].u.sw.cpu = 1;
		one[5].u.sw.pid = 0;
		one[6].u.brk.pid = 1;
		one[6].u.brk.increment = 4096;
		for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
			char name[64];

			m = vm_machine_clone(start);
			memset(&s, 0, sizeof(s));
			add_op(&s, m, &one[i], &r);
			snprintf(name, sizeof(name), "%s.ops",
				 vm_op_name(one[i].type));
			write_seed("op", name, s.buf, s.len);
			n++;
			vm_machine_free(m);
		}
	}
	vm_machine_free(start);
	printf("op: %u seeds\n", n);
}

/* ---- state: small machines of every arch ---- */

static void state_seeds(void)
{
	static const struct {
		const char *name;
		enum vm_arch_id arch;
	} arches[] = {
		{ "i386", VM_ARCH_I386 }, { "i386-pae", VM_ARCH_I386_PAE },
		{ "x86_64", VM_ARCH_X86_64 },
		{ "x86_64-la57", VM_ARCH_X86_64_LA57 },
	};
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++) {
		struct vm_config c;
		struct vm_machine *m;
		struct vm_error err = { 0, "" };
		struct vm_op op;
		uint8_t *buf;
		size_t len;
		char name[64];

		vm_config_default(&c);
		c.arch = arches[i].arch;
		c.memory = 32ULL << 20;
		c.churn = 8;
		c.cpus = 2;
		if (vm_machine_create(&c, &m, &err))
			die("state %s: %s", arches[i].name, err.detail);
		vm_state_serialize(m, &buf, &len);
		snprintf(name, sizeof(name), "%s-fresh.state", arches[i].name);
		write_seed("state", name, buf, len);
		free(buf);
		n++;
		op = mk(VM_OP_PROCESS_CREATE);
		strcpy(op.u.create.name, "s");
		op.u.create.text = op.u.create.data = 4096;
		op.u.create.heap = op.u.create.stack = 4096;
		op.u.create.populate = true;
		if (vm_machine_apply(m, &op, NULL, &err))
			die("state %s: %s", arches[i].name, err.detail);
		op = mk(VM_OP_KMALLOC);
		op.u.kmalloc.size = 100;
		op.u.kmalloc.gfp = VM_GFP_KERNEL;
		if (vm_machine_apply(m, &op, NULL, &err))
			die("state %s: %s", arches[i].name, err.detail);
		op = mk(VM_OP_VMALLOC);
		op.u.vmalloc.size = 4096;
		if (vm_machine_apply(m, &op, NULL, &err))
			die("state %s: %s", arches[i].name, err.detail);
		op = mk(VM_OP_SWITCH);
		op.u.sw.cpu = 1;
		op.u.sw.pid = 1;
		if (vm_machine_apply(m, &op, NULL, &err))
			die("state %s: %s", arches[i].name, err.detail);
		vm_state_serialize(m, &buf, &len);
		snprintf(name, sizeof(name), "%s-used.state", arches[i].name);
		write_seed("state", name, buf, len);
		free(buf);
		n++;
		vm_machine_free(m);
	}
	printf("state: %u seeds\n", n);
}

/* ---- parse: typical texts, after the byte that picks the parser ---- */

static void parse_seeds(void)
{
	static const struct {
		int mode;
		const char *name, *text;
	} texts[] = {
		{ 0, "u64_dec", "4096" }, { 0, "u64_hex", "0x7fffffffe000" },
		{ 0, "u64_hex_upper", "0XFFFFFFFFFFFFFFFF" },
		{ 0, "u64_max", "18446744073709551615" },
		{ 0, "u64_over", "18446744073709551616" },
		{ 0, "u64_junk", "12ab" },
		{ 1, "size_kib", "4KiB" }, { 1, "size_space", "1 GiB" },
		{ 1, "size_tib", "16777215TiB" }, { 1, "size_b", "512B" },
		{ 1, "size_hex", "0x1000" },
		{ 2, "i64_neg", "-9223372036854775808" },
		{ 2, "i64_pos", "9223372036854775807" },
		{ 2, "i64_hex", "-0x1000" },
		{ 3, "batch_hex", "0xffff888000000000" },
		{ 3, "batch_dec", "9007199254740991" },
		{ 3, "batch_zero", "0" },
		{ 5, "gfp_kernel", "GFP_KERNEL" },
		{ 5, "gfp_or", "GFP_KERNEL | __GFP_DMA32" },
		{ 5, "gfp_highuser", "GFP_HIGHUSER_MOVABLE|__GFP_ZERO" },
		{ 6, "vmsplit", "3G/1G" }, { 6, "mode", "kernel" },
		{ 6, "access", "exec" }, { 6, "prot", "rw-" },
	};
	static const uint64_t numbers[] = { 0, 999999999999999ULL,
					    1000000000000000ULL,
					    0xffff888000001000ULL,
					    UINT64_MAX };
	char buf[128];
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char name[64];
		int n = snprintf(buf, sizeof(buf), "%c%s", texts[i].mode,
				 texts[i].text);

		snprintf(name, sizeof(name), "%s.txt", texts[i].name);
		write_seed("parse", name, buf, (size_t)n);
	}
	for (size_t k = 0; k < sizeof(numbers) / sizeof(numbers[0]); k++) {
		char name[64];

		buf[0] = 4;
		for (unsigned b = 0; b < 8; b++)
			buf[1 + b] = (char)(numbers[k] >> (8 * b));
		snprintf(name, sizeof(name), "number_%zu.bin", k);
		write_seed("parse", name, buf, 9);
	}
	printf("parse: %zu seeds\n",
	       i + sizeof(numbers) / sizeof(numbers[0]));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0777) && errno != EEXIST)
		die("%s: %s", root, strerror(errno));
	dispatch_seeds();
	op_seeds();
	state_seeds();
	parse_seeds();
	return 0;
}
