/* kernel.c - the kernel's allocators: kmalloc/kfree, vmalloc/vfree,
 * alloc_pages/free_pages. */
#include <string.h>

#include "core/gfp.h"
#include "core/slab.h"
#include "core/vmalloc.h"
#include "internal.h"

static int need(struct api_call *c, bool present, const char *what)
{
	if (!present)
		return api_fail(&c->prob, "missing_field", "%s", what);
	return 0;
}

int api_kmalloc(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_KMALLOC };
	struct vm_op_result res;
	struct api_entry *e;
	bool has_size;
	cJSON *o, *warn;
	char gfp[160];

	if (api_json_size(c->body, "size", &op.u.kmalloc.size, &has_size,
			  &c->prob) ||
	    need(c, has_size, "size: bytes to allocate") ||
	    api_gfp(c, "gfp", &op.u.kmalloc.gfp) ||
	    api_mutate(c, &op, &res, &e))
		return -1;
	o = cJSON_CreateObject();
	api_add_hex(o, "va", res.u.kmalloc.va);
	if (res.u.kmalloc.zero) {
		cJSON_AddNullToObject(o, "pa");
		api_add_u64(o, "size", 0);
		cJSON_AddNullToObject(o, "cache");
		cJSON_AddNullToObject(o, "zone");
	} else {
		api_add_hex(o, "pa", res.u.kmalloc.pa);
		api_add_u64(o, "size", res.u.kmalloc.size);
		if (res.u.kmalloc.large) {
			cJSON_AddStringToObject(o, "cache", "large");
			api_add_u64(o, "order", res.u.kmalloc.order);
		} else {
			cJSON_AddStringToObject(
				o, "cache", vm_slab_cache_name(res.u.kmalloc.cache));
		}
		cJSON_AddStringToObject(o, "zone",
					vm_zone_name(res.u.kmalloc.zone));
	}
	vm_gfp_format(op.u.kmalloc.gfp & ~(VM_GFP_DMA32 | VM_GFP_HIGHMEM),
		      gfp, sizeof(gfp));
	cJSON_AddStringToObject(o, "gfp", gfp);
	warn = cJSON_AddArrayToObject(o, "warnings");
	if (res.u.kmalloc.warnings & VM_WARN_STRIPPED_DMA32)
		cJSON_AddItemToArray(warn, cJSON_CreateString(
			"__GFP_DMA32 stripped: the slab allocator does not "
			"serve ZONE_DMA32 (kmalloc_fix_flags)"));
	if (res.u.kmalloc.warnings & VM_WARN_STRIPPED_HIGHMEM)
		cJSON_AddItemToArray(warn, cJSON_CreateString(
			"__GFP_HIGHMEM stripped: kmalloc memory needs a kernel "
			"logical address, which highmem has not"));
	api_add_u64(o, "version", vm_machine_version(e->m));
	api_close(c, e, true);
	/* SPEC 1.6: kmalloc(0) answers ZERO_SIZE_PTR with 200: nothing was
	 * created. */
	return api_reply(c, res.u.kmalloc.zero ? 200 : 201, o);
}

/* kfree and vfree: {"va"} -> {"va", "version"}. */
static int free_va(struct api_call *c, enum vm_op_type type)
{
	struct vm_op op = { .type = type };
	struct vm_op_result res;
	struct api_entry *e;
	bool has_va;
	cJSON *o;

	if (api_json_u64(c->body, "va", &op.u.kfree.va, &has_va, &c->prob) ||
	    need(c, has_va, "va: the address to free") ||
	    api_mutate(c, &op, &res, &e))
		return -1;
	o = cJSON_CreateObject();
	api_add_hex(o, "va", op.u.kfree.va);
	api_add_u64(o, "version", vm_machine_version(e->m));
	api_close(c, e, true);
	return api_reply(c, 200, o);
}

int api_kfree(struct api_call *c)
{
	return free_va(c, VM_OP_KFREE);
}

int api_vfree(struct api_call *c)
{
	return free_va(c, VM_OP_VFREE);
}

int api_vmalloc(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_VMALLOC };
	struct vm_op_result res;
	struct api_entry *e;
	bool has_size;
	cJSON *o, *frames;
	int i;

	op.u.vmalloc.guard = true;
	if (api_json_size(c->body, "size", &op.u.vmalloc.size, &has_size,
			  &c->prob) ||
	    need(c, has_size, "size: bytes to allocate") ||
	    api_json_bool(c->body, "guard", &op.u.vmalloc.guard, NULL,
			  &c->prob) ||
	    api_mutate(c, &op, &res, &e))
		return -1;
	o = cJSON_CreateObject();
	api_add_hex(o, "va", res.u.vmalloc.va);
	api_add_u64(o, "size", res.u.vmalloc.size);
	api_add_u64(o, "pages", res.u.vmalloc.pages);
	cJSON_AddBoolToObject(o, "guard", res.u.vmalloc.guard);
	frames = cJSON_AddArrayToObject(o, "frames");
	i = vm_vmalloc_at(e->m, res.u.vmalloc.va);
	for (uint64_t p = 0; i >= 0 && p < res.u.vmalloc.pages; p++) {
		char buf[19];

		api_hex(buf, vm_vmalloc_pfn(e->m, (uint32_t)i, p) << 12);
		cJSON_AddItemToArray(frames, cJSON_CreateString(buf));
	}
	api_add_u64(o, "version", vm_machine_version(e->m));
	api_close(c, e, true);
	return api_reply(c, 201, o);
}

int api_pages(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_ALLOC_PAGES };
	struct vm_op_result res;
	struct api_entry *e;
	uint64_t order = 0;
	cJSON *o;

	if (api_json_u64(c->body, "order", &order, NULL, &c->prob) ||
	    api_gfp(c, "gfp", &op.u.alloc_pages.gfp))
		return -1;
	if (order > 10)
		return api_fail(&c->prob, "out_of_range",
				"order: must be 0 to 10 (MAX_PAGE_ORDER)");
	op.u.alloc_pages.order = (uint32_t)order;
	if (api_mutate(c, &op, &res, &e))
		return -1;
	o = cJSON_CreateObject();
	api_add_hex(o, "pa", res.u.alloc_pages.pa);
	api_add_u64(o, "order", res.u.alloc_pages.order);
	cJSON_AddStringToObject(o, "zone", vm_zone_name(res.u.alloc_pages.zone));
	if (res.u.alloc_pages.has_va)
		api_add_hex(o, "va", res.u.alloc_pages.va);
	else
		cJSON_AddNullToObject(o, "va");
	api_add_u64(o, "version", vm_machine_version(e->m));
	api_close(c, e, true);
	return api_reply(c, 201, o);
}

int api_pages_free(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_FREE_PAGES };
	struct vm_op_result res;
	struct api_entry *e;
	uint64_t order = 0;
	bool has_pa;
	cJSON *o;

	if (api_json_u64(c->body, "pa", &op.u.free_pages.pa, &has_pa,
			 &c->prob) ||
	    need(c, has_pa, "pa: the block's physical address") ||
	    api_json_u64(c->body, "order", &order, NULL, &c->prob))
		return -1;
	if (order > 10)
		return api_fail(&c->prob, "out_of_range",
				"order: must be 0 to 10 (MAX_PAGE_ORDER)");
	op.u.free_pages.order = (uint32_t)order;
	if (api_mutate(c, &op, &res, &e))
		return -1;
	o = cJSON_CreateObject();
	api_add_hex(o, "pa", op.u.free_pages.pa);
	api_add_u64(o, "order", order);
	api_add_u64(o, "version", vm_machine_version(e->m));
	api_close(c, e, true);
	return api_reply(c, 200, o);
}
