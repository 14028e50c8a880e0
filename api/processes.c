/* processes.c - processes, their regions and page tables, and the CPUs. */
#include <stdio.h>
#include <string.h>

#include "core/process.h"
#include "core/translate.h"
#include "internal.h"

cJSON *api_process_json(const struct vm_machine *m, uint32_t pid)
{
	struct vm_process_info pi;
	cJSON *o, *regions;

	if (vm_process_get(m, pid, &pi))
		return NULL;
	o = cJSON_CreateObject();
	api_add_u64(o, "pid", pi.pid);
	cJSON_AddStringToObject(o, "name", pi.name);
	api_add_hex(o, "pgd_pa", pi.pgd_pa);
	api_add_hex(o, "kernel_stack", pi.kstack);
	api_add_hex(o, "brk_start", pi.brk_start);
	api_add_hex(o, "brk", pi.brk);
	regions = cJSON_AddArrayToObject(o, "regions");
	for (uint32_t i = 0; i < pi.nregions; i++) {
		struct vm_region_info r;
		char prot[4];
		cJSON *ro = cJSON_CreateObject();

		vm_process_region(m, pid, i, &r);
		api_add_hex(ro, "start", r.start);
		api_add_hex(ro, "end", r.end);
		cJSON_AddStringToObject(ro, "perms", vm_prot_format(r.prot, prot));
		cJSON_AddStringToObject(ro, "kind", vm_vma_kind_name(r.kind));
		cJSON_AddItemToArray(regions, ro);
	}
	return o;
}

/* Answers a mutation with the process it changed, and the new version. */
static int reply_process(struct api_call *c, struct api_entry *e, int status,
			 uint32_t pid)
{
	cJSON *o = api_process_json(e->m, pid);

	api_add_u64(o, "version", vm_machine_version(e->m));
	api_close(c, e, true);
	return api_reply(c, status, o);
}

int api_process_create(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_PROCESS_CREATE };
	struct vm_op_result res;
	struct api_entry *e;
	bool present;
	uint64_t *seg[] = { &op.u.create.text, &op.u.create.data,
			    &op.u.create.heap, &op.u.create.stack };
	static const char *const names[] = { "text", "data", "heap", "stack" };

	strcpy(op.u.create.name, "process");
	op.u.create.populate = true;
	if (api_json_str(c->body, "name", op.u.create.name, API_PROC_NAME_MAX,
			 &present, &c->prob) ||
	    api_json_bool(c->body, "populate", &op.u.create.populate, NULL,
			  &c->prob))
		return -1;
	if (present && op.u.create.name[0] == '\0')
		return api_fail(&c->prob, "invalid_value",
				"name: must not be empty");
	for (int i = 0; i < 4; i++) {
		bool has;

		*seg[i] = VM_SEG_DEFAULT;
		if (api_json_size(c->body, names[i], seg[i], &has, &c->prob))
			return -1;
		/* UINT64_MAX means "the default" inside core. */
		if (has && *seg[i] == VM_SEG_DEFAULT)
			return api_fail(&c->prob, "out_of_range",
					"%s: larger than any address space",
					names[i]);
	}
	if (api_mutate(c, &op, &res, &e))
		return -1;
	return reply_process(c, e, 201, res.u.create.pid);
}

int api_process_list(struct api_call *c)
{
	struct api_entry *e;
	char buf[32];
	uint64_t size, after = 0;
	uint32_t n, i, shown = 0;
	cJSON *o, *items;
	int rc;

	/* Cursor pagination as for machines: the token is the last pid. */
	if ((rc = api_page(c, &size, buf, sizeof(buf))) < 0)
		return -1;
	if (rc == 1 && (api_parse_u64(buf, false, &after) ||
			after > UINT32_MAX))
		return api_bad_token(c);
	if (!(e = api_open(c, false)))
		return -1;
	o = cJSON_CreateObject();
	items = cJSON_AddArrayToObject(o, "items");
	n = vm_process_count(e->m);
	for (i = 0; i < n && vm_process_pid_at(e->m, i) <= after; i++)
		;
	for (; i < n && shown < size; i++, shown++)
		cJSON_AddItemToArray(items,
				     api_process_json(e->m,
						      vm_process_pid_at(e->m, i)));
	if (i < n) {
		snprintf(buf, sizeof(buf), "%u", vm_process_pid_at(e->m, i - 1));
		cJSON_AddStringToObject(o, "next_page_token", buf);
	} else {
		cJSON_AddNullToObject(o, "next_page_token");
	}
	api_close(c, e, false);
	return api_reply(c, 200, o);
}

static int process_pid(struct api_call *c, uint32_t *pid)
{
	return api_param_u32(c, 1, "process", pid);
}

int api_process_get(struct api_call *c)
{
	struct api_entry *e;
	uint32_t pid;
	cJSON *o;

	if (process_pid(c, &pid) || !(e = api_open(c, false)))
		return -1;
	o = api_process_json(e->m, pid);
	api_close(c, e, false);
	if (!o)
		return api_fail(&c->prob, "not_found", "no process %u", pid);
	return api_reply(c, 200, o);
}

int api_process_exit(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_PROCESS_EXIT };
	struct vm_op_result res;
	struct api_entry *e;

	if (process_pid(c, &op.u.exit.pid) || api_mutate(c, &op, &res, &e))
		return -1;
	api_close(c, e, true);
	c->resp->status = 204;
	c->resp->content_type = "application/json";
	return 0;
}

static int read_prot(struct api_call *c, uint8_t *prot)
{
	char text[8];
	bool present;
	int p;

	*prot = VM_PROT_READ | VM_PROT_WRITE;
	if (api_json_str(c->body, "prot", text, 3, &present, &c->prob))
		return strcmp(c->prob.code, "wrong_type") == 0
			       ? -1
			       : api_fail(&c->prob, "invalid_value",
					  "prot: three characters, \"rwx\" with "
					  "'-' for a missing right (\"rw-\", "
					  "\"r-x\")");
	if (!present)
		return 0;
	p = vm_prot_parse(text);
	if (p < 0)
		return api_fail(&c->prob, "invalid_value",
				"prot: \"%s\" is not of the form \"rwx\" with "
				"'-' for a missing right", text);
	*prot = (uint8_t)p;
	return 0;
}

int api_mmap(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_MMAP };
	struct vm_op_result res;
	struct api_entry *e;
	bool has_len;
	cJSON *o;
	char prot[4];

	op.u.mmap.populate = true;
	if (process_pid(c, &op.u.mmap.pid) ||
	    api_json_size(c->body, "length", &op.u.mmap.length, &has_len,
			  &c->prob) ||
	    read_prot(c, &op.u.mmap.prot) ||
	    api_json_u64(c->body, "addr", &op.u.mmap.addr, &op.u.mmap.has_addr,
			 &c->prob) ||
	    api_json_bool(c->body, "fixed", &op.u.mmap.fixed, NULL, &c->prob) ||
	    api_json_bool(c->body, "populate", &op.u.mmap.populate, NULL,
			  &c->prob))
		return -1;
	if (!has_len)
		return api_fail(&c->prob, "missing_field",
				"length: how many bytes to map");
	if (api_mutate(c, &op, &res, &e))
		return -1;
	o = cJSON_CreateObject();
	api_add_hex(o, "start", res.u.mmap.start);
	api_add_hex(o, "end", res.u.mmap.end);
	cJSON_AddStringToObject(o, "perms", vm_prot_format(res.u.mmap.prot, prot));
	cJSON_AddStringToObject(o, "kind", "mmap");
	api_add_u64(o, "version", vm_machine_version(e->m));
	api_close(c, e, true);
	return api_reply(c, 201, o);
}

int api_munmap(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_MUNMAP };
	struct vm_op_result res;
	struct api_entry *e;
	bool has_addr, has_len;

	if (process_pid(c, &op.u.munmap.pid) ||
	    api_json_u64(c->body, "addr", &op.u.munmap.addr, &has_addr,
			 &c->prob) ||
	    api_json_size(c->body, "length", &op.u.munmap.length, &has_len,
			  &c->prob))
		return -1;
	if (!has_addr || !has_len)
		return api_fail(&c->prob, "missing_field",
				"%s: munmap takes addr and length",
				has_addr ? "length" : "addr");
	if (api_mutate(c, &op, &res, &e))
		return -1;
	return reply_process(c, e, 200, op.u.munmap.pid);
}

int api_brk(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_BRK };
	struct vm_op_result res;
	struct api_entry *e;
	bool has_inc, has_addr;

	if (process_pid(c, &op.u.brk.pid) ||
	    api_json_i64(c->body, "increment", &op.u.brk.increment, &has_inc,
			 &c->prob) ||
	    api_json_u64(c->body, "addr", &op.u.brk.addr, &has_addr, &c->prob))
		return -1;
	if (has_inc == has_addr)
		return api_fail(&c->prob, has_inc ? "invalid_value"
						  : "missing_field",
				"brk takes either increment (bytes, may be "
				"negative) or addr, not %s",
				has_inc ? "both" : "neither");
	op.u.brk.absolute = has_addr;
	if (api_mutate(c, &op, &res, &e))
		return -1;
	return reply_process(c, e, 200, op.u.brk.pid);
}

struct pt_ctx {
	cJSON *arr;
	unsigned digits;
	const struct vm_machine *m;
	unsigned levels;
};

/* The flags of a leaf of page_size, by name. */
static cJSON *flag_names(const struct vm_machine *m, uint64_t page_size,
			 uint64_t flags)
{
	const struct vm_arch *a = vm_machine_layout(m)->arch;
	const char *names[12];
	unsigned level = a->levels - 1, n;
	cJSON *arr = cJSON_CreateArray();

	for (unsigned i = 0; i < a->levels; i++)
		if (vm_level_span(a, i) == page_size)
			level = i;
	n = vm_entry_flags(m, level, flags, names);
	for (unsigned i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
	return arr;
}

static int mapping_cb(void *ctx, uint64_t va_start, uint64_t va_end,
		      uint64_t pa_start, uint64_t page_size, uint64_t flags)
{
	struct pt_ctx *p = ctx;
	cJSON *o = cJSON_CreateObject();

	api_add_hex(o, "va_start", va_start);
	/* A run that ends at 2^64 wraps to 0. */
	if (va_end == 0)
		cJSON_AddStringToObject(o, "va_end", "0x10000000000000000");
	else
		api_add_hex(o, "va_end", va_end);
	api_add_hex(o, "pa_start", pa_start);
	api_add_u64(o, "page_size", page_size);
	cJSON_AddItemToObject(o, "flags", flag_names(p->m, page_size, flags));
	cJSON_AddItemToArray(p->arr, o);
	return 0;
}

static int frame_cb(void *ctx, uint64_t pfn)
{
	struct pt_ctx *p = ctx;

	char buf[19];

	api_hex(buf, pfn << 12);
	cJSON_AddItemToArray(p->arr, cJSON_CreateString(buf));
	return 0;
}

int api_pagetable(struct api_call *c)
{
	struct api_entry *e;
	uint32_t pid;
	struct pt_ctx p;
	cJSON *o;

	if (process_pid(c, &pid) || !(e = api_open(c, false)))
		return -1;
	if (pid == 0 || vm_process_get(e->m, pid, &(struct vm_process_info){0})) {
		api_close(c, e, false);
		return api_fail(&c->prob, "not_found", "no process %u", pid);
	}
	o = cJSON_CreateObject();
	api_add_u64(o, "pid", pid);
	p.m = e->m;
	p.arr = cJSON_AddArrayToObject(o, "mappings");
	vm_pagetable_mappings(e->m, pid, mapping_cb, &p);
	p.arr = cJSON_AddArrayToObject(o, "table_frames");
	vm_pagetable_frames(e->m, pid, frame_cb, &p);
	api_close(c, e, false);
	return api_reply(c, 200, o);
}

int api_cpus(struct api_call *c)
{
	struct api_entry *e = api_open(c, false);
	cJSON *o, *arr;

	if (!e)
		return -1;
	o = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(o, "cpus");
	for (uint32_t n = 0; n < vm_machine_config(e->m)->cpus; n++) {
		uint32_t pid;
		uint64_t cr3;
		cJSON *co = cJSON_CreateObject();

		vm_cpu_get(e->m, n, &pid, &cr3);
		api_add_u64(co, "cpu", n);
		api_add_u64(co, "pid", pid);
		api_add_hex(co, "cr3", cr3);
		cJSON_AddItemToArray(arr, co);
	}
	api_close(c, e, false);
	return api_reply(c, 200, o);
}

int api_switch(struct api_call *c)
{
	struct vm_op op = { .type = VM_OP_SWITCH };
	struct vm_op_result res;
	struct api_entry *e;
	uint64_t pid;
	bool has_pid;
	cJSON *o;

	if (api_param_u32(c, 1, "CPU", &op.u.sw.cpu) ||
	    api_json_u64(c->body, "pid", &pid, &has_pid, &c->prob))
		return -1;
	if (!has_pid)
		return api_fail(&c->prob, "missing_field",
				"pid: the task to switch to (0: idle)");
	if (pid > UINT32_MAX)
		return api_fail(&c->prob, "out_of_range", "pid: too large");
	op.u.sw.pid = (uint32_t)pid;
	if (api_mutate(c, &op, &res, &e))
		return -1;
	o = cJSON_CreateObject();
	api_add_u64(o, "cpu", res.u.sw.cpu);
	api_add_u64(o, "prev_pid", res.u.sw.prev_pid);
	api_add_u64(o, "next_pid", res.u.sw.next_pid);
	api_add_hex(o, "cr3_before", res.u.sw.cr3_before);
	api_add_hex(o, "cr3_after", res.u.sw.cr3_after);
	api_add_u64(o, "version", vm_machine_version(e->m));
	api_close(c, e, true);
	return api_reply(c, 200, o);
}
