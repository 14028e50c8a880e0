/*
 * error.h - the one error convention of core/.
 *
 * Functions that can fail return 0 (or a non-negative count) on success and
 * a negative VM_E* code on failure. Where a caller needs to tell a person
 * what to change, the function also takes an optional `struct vm_error *`
 * that it fills on failure and leaves untouched on success.
 *
 * A modelled outcome is not an error: a page fault, or a DMA check that says
 * "no", is a result. The simulated machine running out of frames is an error
 * of the operation that asked (VM_ENOMEM), because the operation did not
 * happen and changed nothing.
 *
 * Each code names one kind of mistake so that the service can map it to an
 * HTTP status and a stable problem `code` without parsing text.
 */
#ifndef VM_ERROR_H
#define VM_ERROR_H

enum vm_errcode {
	VM_OK = 0,
	VM_EINVAL = -1,      /* a value never valid on this machine (422) */
	VM_ERANGE = -2,      /* an address or size outside what the op needs (422) */
	VM_ENOMEM = -3,      /* simulated out of memory (409) */
	VM_ENOENT = -4,      /* no such process, area or CPU (404) */
	VM_EBUSY = -5,       /* task runs on another CPU (409) */
	VM_EDOUBLEFREE = -6, /* free of something already free (409) */
	VM_EINTERIOR = -7,   /* free of a pointer inside an allocation (409) */
	VM_EWRONGFREE = -8,  /* free through the wrong allocator (409) */
	VM_EORDER = -9,      /* free_pages with the wrong order (409) */
	VM_ENOTALLOC = -10,  /* free of memory that was never allocated (409) */
	VM_ENOSPACE = -11,   /* no room in a virtual region (409) */
	VM_EEXIST = -12,     /* duplicate (409) */
	VM_ECORRUPT = -13,   /* an encoded state or record that does not decode */
	VM_EVERSION = -14,   /* an encoding of a version this build cannot read */
	VM_ENPROC = -15,     /* the machine's process limit reached (409) */
};

#define VM_ERROR_DETAIL_MAX 192

/* What went wrong, for a person: `detail` says what to change. */
struct vm_error {
	int code;
	char detail[VM_ERROR_DETAIL_MAX];
};

/* A short constant description of a code ("simulated out of memory"). */
const char *vm_strerror(int code);

/*
 * A stable identifier for a code ("out_of_memory"), for problem catalogues.
 */
const char *vm_errname(int code);

/*
 * Fills err (if not NULL) with code and a printf-style detail, and returns
 * code, so that `return vm_fail(err, VM_EINVAL, "...")` reads as one step.
 */
int vm_fail(struct vm_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
