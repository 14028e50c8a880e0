/* problem.c - the problem catalogue; see problem.h and docs/problems.md. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "problem.h"

static const struct api_problem_type catalogue[] = {
	/* 400: the request is not well-formed. */
	{ "malformed_json", 400, "Malformed JSON" },
	{ "duplicate_key", 400, "Duplicate key in a JSON object" },
	{ "wrong_type", 400, "A field has the wrong JSON type" },
	{ "bad_query", 400, "Malformed query parameter" },
	/* 404, 405, 412, 413, 415: the request does not fit the resource. */
	{ "unauthorized", 401, "A valid bearer token is needed" },
	{ "forbidden", 403, "The caller's role or share does not allow this" },
	{ "not_found", 404, "No such resource" },
	{ "no_such_route", 404, "No such path" },
	{ "method_not_allowed", 405, "Method not allowed on this path" },
	{ "precondition_failed", 412, "The machine has another version" },
	{ "payload_too_large", 413, "Request body too large" },
	{ "unsupported_media_type", 415, "Unsupported Content-Type" },
	/* 422: a value that is never valid on this machine. */
	{ "unknown_field", 422, "Unknown field" },
	{ "missing_field", 422, "Missing field" },
	{ "invalid_value", 422, "Invalid value" },
	{ "out_of_range", 422, "Value out of range" },
	{ "imprecise_number", 422, "Number beyond 2^53 - 1" },
	{ "batch_too_large", 422, "Batch over 10,000 items" },
	/* 409: valid, but the machine's state forbids it. */
	{ "out_of_memory", 409, "Simulated out of memory" },
	{ "no_virtual_space", 409, "No room in the virtual region" },
	{ "double_free", 409, "Memory already freed" },
	{ "interior_pointer", 409, "Pointer inside an allocation" },
	{ "wrong_free", 409, "Freed through the wrong allocator" },
	{ "wrong_order", 409, "Freed with the wrong order" },
	{ "not_allocated", 409, "Memory was never allocated" },
	{ "task_busy", 409, "Task runs on another CPU" },
	{ "already_exists", 409, "Id already in use" },
	{ "too_many_machines", 409, "Machine limit reached" },
	{ "too_many_tenants", 409, "Tenant limit reached" },
	{ "too_many_shares", 409, "Share limit of the machine reached" },
	{ "too_many_processes", 409, "Process limit of the machine reached" },
	{ "quota_exceeded", 429, "The tenant's quota is used up" },
	{ "rate_limited", 429, "Too many requests" },
	/* 5xx: never for a client's mistake. */
	{ "internal_error", 500, "Internal error" },
	{ "service_unavailable", 503, "Service unavailable" },
};

#define NCAT (sizeof(catalogue) / sizeof(catalogue[0]))

const struct api_problem_type *api_problem_catalogue(size_t *n)
{
	*n = NCAT;
	return catalogue;
}

const struct api_problem_type *api_problem_type(const char *code)
{
	for (size_t i = 0; i < NCAT; i++)
		if (strcmp(catalogue[i].code, code) == 0)
			return &catalogue[i];
	return NULL;
}

int api_fail(struct api_problem *p, const char *code, const char *fmt, ...)
{
	va_list ap;

	p->code = code;
	va_start(ap, fmt);
	vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
	va_end(ap);
	return -1;
}

const char *api_code_for_vm_error(int vm_code)
{
	switch (vm_code) {
	case VM_EINVAL:
		return "invalid_value";
	case VM_ERANGE:
		return "out_of_range";
	case VM_ENOMEM:
		return "out_of_memory";
	case VM_ENOENT:
		return "not_found";
	case VM_EBUSY:
		return "task_busy";
	case VM_EDOUBLEFREE:
		return "double_free";
	case VM_EINTERIOR:
		return "interior_pointer";
	case VM_EWRONGFREE:
		return "wrong_free";
	case VM_EORDER:
		return "wrong_order";
	case VM_ENOTALLOC:
		return "not_allocated";
	case VM_ENOSPACE:
		return "no_virtual_space";
	case VM_EEXIST:
		return "already_exists";
	case VM_ENPROC:
		return "too_many_processes";
	default:
		return "internal_error";
	}
}
