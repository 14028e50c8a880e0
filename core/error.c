/* error.c - codes, names and the detail formatter; see error.h. */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

static const struct {
	int code;
	const char *name;
	const char *text;
} errors[] = {
	{ VM_OK, "ok", "success" },
	{ VM_EINVAL, "invalid_value", "value not valid on this machine" },
	{ VM_ERANGE, "out_of_range", "address or size out of range" },
	{ VM_ENOMEM, "out_of_memory", "simulated out of memory" },
	{ VM_ENOENT, "not_found", "no such object" },
	{ VM_EBUSY, "task_busy", "task is running on another CPU" },
	{ VM_EDOUBLEFREE, "double_free", "memory already freed" },
	{ VM_EINTERIOR, "interior_pointer", "pointer inside an allocation" },
	{ VM_EWRONGFREE, "wrong_free", "freed through the wrong allocator" },
	{ VM_EORDER, "wrong_order", "freed with the wrong order" },
	{ VM_ENOTALLOC, "not_allocated", "memory was never allocated" },
	{ VM_ENOSPACE, "no_virtual_space", "no room in the virtual region" },
	{ VM_EEXIST, "already_exists", "already exists" },
	{ VM_ECORRUPT, "corrupt_encoding", "encoding does not decode" },
	{ VM_EVERSION, "unknown_version", "encoding version not readable" },
	{ VM_ENPROC, "too_many_processes", "process limit reached" },
};

#define NERRORS (sizeof(errors) / sizeof(errors[0]))

const char *vm_strerror(int code)
{
	for (unsigned i = 0; i < NERRORS; i++)
		if (errors[i].code == code)
			return errors[i].text;
	return "unknown error";
}

const char *vm_errname(int code)
{
	for (unsigned i = 0; i < NERRORS; i++)
		if (errors[i].code == code)
			return errors[i].name;
	return "unknown";
}

int vm_fail(struct vm_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return code;
}
