/* history.c - GET /v1/machines/{m}/history: the operations applied, in
 * order, with what each answered (SPEC 2.3). */
#include <stdio.h>
#include <string.h>

#include "core/gfp.h"
#include "core/process.h"
#include "core/slab.h"
#include "internal.h"

/* The request fields of an operation, as the API takes them. */
static cJSON *args_json(const struct vm_op *op)
{
	cJSON *a = cJSON_CreateObject();
	char buf[160];

	switch (op->type) {
	case VM_OP_PROCESS_CREATE: {
		const uint64_t *seg[] = { &op->u.create.text, &op->u.create.data,
					  &op->u.create.heap,
					  &op->u.create.stack };
		static const char *const names[] = { "text", "data", "heap",
						     "stack" };

		cJSON_AddStringToObject(a, "name", op->u.create.name);
		for (int i = 0; i < 4; i++)
			if (*seg[i] != VM_SEG_DEFAULT)
				api_add_u64(a, names[i], *seg[i]);
		cJSON_AddBoolToObject(a, "populate", op->u.create.populate);
		break;
	}
	case VM_OP_PROCESS_EXIT:
		api_add_u64(a, "pid", op->u.exit.pid);
		break;
	case VM_OP_MMAP:
		api_add_u64(a, "pid", op->u.mmap.pid);
		api_add_u64(a, "length", op->u.mmap.length);
		cJSON_AddStringToObject(a, "prot",
					vm_prot_format(op->u.mmap.prot, buf));
		if (op->u.mmap.has_addr)
			api_add_hex(a, "addr", op->u.mmap.addr);
		cJSON_AddBoolToObject(a, "fixed", op->u.mmap.fixed);
		cJSON_AddBoolToObject(a, "populate", op->u.mmap.populate);
		break;
	case VM_OP_MUNMAP:
		api_add_u64(a, "pid", op->u.munmap.pid);
		api_add_hex(a, "addr", op->u.munmap.addr);
		api_add_u64(a, "length", op->u.munmap.length);
		break;
	case VM_OP_BRK:
		api_add_u64(a, "pid", op->u.brk.pid);
		if (op->u.brk.absolute) {
			api_add_hex(a, "addr", op->u.brk.addr);
		} else {
			snprintf(buf, sizeof(buf), "%lld",
				 (long long)op->u.brk.increment);
			cJSON_AddStringToObject(a, "increment", buf);
		}
		break;
	case VM_OP_KMALLOC:
		api_add_u64(a, "size", op->u.kmalloc.size);
		cJSON_AddStringToObject(a, "gfp",
					vm_gfp_format(op->u.kmalloc.gfp, buf,
						      sizeof(buf)));
		break;
	case VM_OP_KFREE:
	case VM_OP_VFREE:
		api_add_hex(a, "va", op->u.kfree.va);
		break;
	case VM_OP_VMALLOC:
		api_add_u64(a, "size", op->u.vmalloc.size);
		cJSON_AddBoolToObject(a, "guard", op->u.vmalloc.guard);
		break;
	case VM_OP_ALLOC_PAGES:
		api_add_u64(a, "order", op->u.alloc_pages.order);
		cJSON_AddStringToObject(a, "gfp",
					vm_gfp_format(op->u.alloc_pages.gfp, buf,
						      sizeof(buf)));
		break;
	case VM_OP_FREE_PAGES:
		api_add_hex(a, "pa", op->u.free_pages.pa);
		api_add_u64(a, "order", op->u.free_pages.order);
		break;
	case VM_OP_SWITCH:
		api_add_u64(a, "cpu", op->u.sw.cpu);
		api_add_u64(a, "pid", op->u.sw.pid);
		break;
	default:
		break;
	}
	return a;
}

/* What an operation answered (the fields its own answer carries). */
static cJSON *result_json(const struct vm_op *op, const struct vm_op_result *r)
{
	cJSON *o = cJSON_CreateObject();
	char prot[4];

	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		api_add_u64(o, "pid", r->u.create.pid);
		break;
	case VM_OP_MMAP:
		api_add_hex(o, "start", r->u.mmap.start);
		api_add_hex(o, "end", r->u.mmap.end);
		cJSON_AddStringToObject(o, "perms",
					vm_prot_format(r->u.mmap.prot, prot));
		break;
	case VM_OP_KMALLOC:
		api_add_hex(o, "va", r->u.kmalloc.va);
		if (r->u.kmalloc.zero)
			break;
		api_add_hex(o, "pa", r->u.kmalloc.pa);
		if (r->u.kmalloc.large) {
			cJSON_AddStringToObject(o, "cache", "large");
			api_add_u64(o, "order", r->u.kmalloc.order);
		} else {
			cJSON_AddStringToObject(
				o, "cache", vm_slab_cache_name(r->u.kmalloc.cache));
		}
		cJSON_AddStringToObject(o, "zone", vm_zone_name(r->u.kmalloc.zone));
		break;
	case VM_OP_VMALLOC:
		api_add_hex(o, "va", r->u.vmalloc.va);
		api_add_u64(o, "size", r->u.vmalloc.size);
		api_add_u64(o, "pages", r->u.vmalloc.pages);
		break;
	case VM_OP_ALLOC_PAGES:
		api_add_hex(o, "pa", r->u.alloc_pages.pa);
		if (r->u.alloc_pages.has_va)
			api_add_hex(o, "va", r->u.alloc_pages.va);
		cJSON_AddStringToObject(o, "zone",
					vm_zone_name(r->u.alloc_pages.zone));
		break;
	case VM_OP_SWITCH:
		api_add_u64(o, "prev_pid", r->u.sw.prev_pid);
		api_add_u64(o, "next_pid", r->u.sw.next_pid);
		api_add_hex(o, "cr3_before", r->u.sw.cr3_before);
		api_add_hex(o, "cr3_after", r->u.sw.cr3_after);
		break;
	default:
		break;
	}
	return o;
}

struct hist_ctx {
	cJSON *ops;
	uint64_t last;
	unsigned n;
};

static int hist_cb(void *ctx, uint64_t version, const struct vm_op *op,
		   const struct vm_op_result *res, const char *by)
{
	struct hist_ctx *h = ctx;
	cJSON *o = cJSON_CreateObject();

	api_add_u64(o, "version", version);
	cJSON_AddStringToObject(o, "op", vm_op_name(op->type));
	cJSON_AddItemToObject(o, "args", args_json(op));
	cJSON_AddItemToObject(o, "result", result_json(op, res));
	cJSON_AddStringToObject(o, "tenant", by);
	cJSON_AddItemToArray(h->ops, o);
	h->last = version;
	h->n++;
	return 0;
}

int api_history(struct api_call *c)
{
	struct api_store *s = &c->ctx->store;
	struct api_entry *e;
	struct hist_ctx h = { NULL, 0, 0 };
	char buf[32];
	uint64_t size, after = 0, version;
	cJSON *o;
	int rc;

	/* The token is the last version of the previous page. */
	if ((rc = api_page(c, &size, buf, sizeof(buf))) < 0)
		return -1;
	if (rc == 1 && api_parse_u64(buf, false, &after))
		return api_bad_token(c);
	if (!s->ops->history)
		return api_fail(&c->prob, "not_found",
				"this server keeps no history");
	if (!(e = api_open(c, false)))
		return -1;
	version = vm_machine_version(e->m);
	o = cJSON_CreateObject();
	h.ops = cJSON_AddArrayToObject(o, "operations");
	rc = s->ops->history(s->impl, e->owner, e->id, after, (unsigned)size,
			     hist_cb, &h, &c->prob);
	api_close(c, e, false);
	if (rc < 0) {
		cJSON_Delete(o);
		return -1;
	}
	if (h.n == size && h.last < version) {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)h.last);
		cJSON_AddStringToObject(o, "next_page_token", buf);
	} else {
		cJSON_AddNullToObject(o, "next_page_token");
	}
	return api_reply(c, 200, o);
}
