/*
 * internal.h - what the API's resource files share: the call being
 * answered, the route table's shape, and response helpers.
 */
#ifndef API_INTERNAL_H
#define API_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api.h"
#include "json.h"

#define API_MAX_PARAMS 3
/* A path parameter: an id, or owner.id naming another tenant's machine. */
#define API_PARAM_MAX (API_TENANT_MAX + 1 + API_ID_MAX)
#define API_MAX_BATCH 10000
#define API_PROC_NAME_MAX 31

/* The JSON type a field takes, for validation docs and hostile tests. */
enum api_field_kind {
	API_F_U64,     /* integer: number or hex/decimal string */
	API_F_I64,     /* signed integer */
	API_F_SIZE,    /* size: integer, or string with a unit */
	API_F_BOOL,
	API_F_STRING,
	API_F_ITEMS,   /* an array of objects (batch) */
	API_F_QUOTA,   /* an object of sizes and integers (tenant quota) */
};

/*
 * Who may call a route (SPEC part 3). The first five are decided from
 * the caller's role alone, before the handler runs; the last three on
 * the machine {m}, with its shares (access.h), when the handler opens it.
 */
enum api_need {
	API_NEED_NONE,     /* anyone, without a token: /healthz */
	API_NEED_CALLER,   /* any caller with a valid token */
	API_NEED_OBSERVER, /* admin or grader: /metrics */
	API_NEED_ADMIN,    /* the admin: tenants */
	API_NEED_CREATOR,  /* a caller that may own machines: not a grader */
	API_NEED_READ,     /* read access to {m} */
	API_NEED_WRITE,    /* write access to {m} */
	API_NEED_OWNER,    /* owner's access to {m}: delete, shares */
};

struct api_field {
	const char *name;
	enum api_field_kind kind;
};

struct api_call;
typedef int (*api_handler)(struct api_call *c);

struct api_route {
	const char *method;
	const char *pattern;       /* "/v1/machines/{m}/processes/{pid}" */
	api_handler handler;
	const struct api_field *fields; /* body fields, NULL: no body */
	bool mutates;              /* takes If-Match, answers ETag */
	enum api_need need;
	bool raw;                  /* the handler reads its body's text */
};

/* The route table, NULL-method terminated. */
const struct api_route *api_routes(void);

struct api_call {
	struct api_ctx *ctx;
	const struct api_request *req;
	struct api_response *resp;
	const struct api_route *route;
	char params[API_MAX_PARAMS][API_PARAM_MAX + 1]; /* pattern order */
	cJSON *body;               /* the parsed body (POST), else NULL */
	struct api_problem prob;
	struct api_caller caller;  /* who is calling (access.h) */
	struct api_name machine;   /* {m} resolved: owner and id */
};

/* ---- responses ---- */

/* Sends obj as the JSON body with status; takes obj. */
int api_reply(struct api_call *c, int status, cJSON *obj);

/* "0x1f": an address or pa without leading zeros. */
void api_hex(char buf[19], uint64_t v);
cJSON *api_add_hex(cJSON *obj, const char *name, uint64_t v);
/* A raw entry, zero-padded to its width (8 or 16 digits). */
cJSON *api_add_entry(cJSON *obj, const char *name, uint64_t v,
		     unsigned digits);
cJSON *api_add_u64(cJSON *obj, const char *name, uint64_t v);

/* Adds "ETag" and the machine's version to a mutation's answer. */
void api_set_etag(struct api_call *c, uint64_t version);

/* ---- machines ---- */

/*
 * Opens the machine named by the path's {m} with the access its route
 * needs (for reading below API_NEED_WRITE, else for writing); NULL with
 * 404 when the caller cannot see it, 403 when it may not do this.
 * api_close must be given the same `write`.
 */
struct api_entry *api_open(struct api_call *c, bool write);
void api_close(struct api_call *c, struct api_entry *e, bool write);

/* The name the caller knows a machine by: "id" if its own, else
 * "owner.id". */
void api_machine_name(const struct api_call *c, const char *owner,
		      const char *id, char buf[API_PARAM_MAX + 1]);

/*
 * Applies op to the machine {m} under its write lock: checks If-Match,
 * applies, commits to the store. On success res holds the answer and
 * *version the new version; e stays open for the caller to build the
 * answer (it must api_close it). -1 with c->prob on failure (e closed).
 */
int api_mutate(struct api_call *c, const struct vm_op *op,
	       struct vm_op_result *res, struct api_entry **e);

/* A core error as a problem. */
int api_vm_fail(struct api_call *c, const struct vm_error *err);

/* Parses a path parameter as a decimal integer below limit. */
int api_param_u32(struct api_call *c, unsigned i, const char *what,
		  uint32_t *v);

/* Reads a GFP string field (default GFP_KERNEL). */
int api_gfp(struct api_call *c, const char *name, uint32_t *gfp);

/* ---- resource handlers ---- */
int api_healthz(struct api_call *c);
int api_metrics(struct api_call *c);
int api_index(struct api_call *c);
int api_openapi(struct api_call *c);

int api_machine_create(struct api_call *c);
int api_machine_list(struct api_call *c);
int api_machine_get(struct api_call *c);
int api_machine_delete(struct api_call *c);
int api_machine_clone(struct api_call *c);
int api_layout(struct api_call *c);
int api_zones(struct api_call *c);
int api_frames(struct api_call *c);
int api_slabs(struct api_call *c);

int api_process_create(struct api_call *c);
int api_process_list(struct api_call *c);
int api_process_get(struct api_call *c);
int api_process_exit(struct api_call *c);
int api_mmap(struct api_call *c);
int api_munmap(struct api_call *c);
int api_brk(struct api_call *c);
int api_pagetable(struct api_call *c);
int api_cpus(struct api_call *c);
int api_switch(struct api_call *c);

int api_kmalloc(struct api_call *c);
int api_kfree(struct api_call *c);
int api_vmalloc(struct api_call *c);
int api_vfree(struct api_call *c);
int api_pages(struct api_call *c);
int api_pages_free(struct api_call *c);

int api_history(struct api_call *c);

int api_whoami(struct api_call *c);
int api_tenant_create(struct api_call *c);
int api_tenant_list(struct api_call *c);
int api_tenant_delete(struct api_call *c);
int api_token_issue(struct api_call *c);
int api_share_create(struct api_call *c);
int api_share_list(struct api_call *c);
int api_share_delete(struct api_call *c);

int api_translate(struct api_call *c);
int api_translate_batch(struct api_call *c);
int api_dma_check(struct api_call *c);
int api_virt_to_phys(struct api_call *c);
int api_phys_to_virt(struct api_call *c);

/* The machine object of SPEC 2.3 (shared by create, get, list, clone). */
cJSON *api_machine_json(const struct api_call *c, const struct api_entry *e);

/* Whether s is a valid machine id. */
bool api_valid_id(const char *s);

/* Adds a response header (static name). */
void api_add_header(struct api_response *r, const char *name,
		    const char *value);
/* A process object with its regions. */
cJSON *api_process_json(const struct vm_machine *m, uint32_t pid);

/*
 * A list's cursor pagination (SPEC 2.3): page_size (1 to API_MAX_PAGE,
 * default API_DEFAULT_PAGE) into *size, and the raw page_token into token
 * (cap bytes). 1 with a token, 0 without, -1 with 400 bad_query.
 */
#define API_DEFAULT_PAGE 100
#define API_MAX_PAGE 1000
int api_page(struct api_call *c, uint64_t *size, char *token, size_t cap);

/* A page_token this server did not give: 400 bad_query. */
int api_bad_token(struct api_call *c);

/* Query parameter `name` (decoded) into buf; 1 found, 0 absent, -1 bad. */
int api_query(struct api_call *c, const char *name, char *buf, size_t cap);

#endif
