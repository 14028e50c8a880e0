/*
 * problem.h - RFC 9457 problem details: the catalogue of `code`s.
 *
 * Every refusal the API gives is one entry of a fixed catalogue: a stable
 * `code` (what clients and autograders switch on), its HTTP status and
 * title, and a `detail` written for the request at hand that says what to
 * change. docs/problems.md lists the catalogue; a test keeps the two equal.
 */
#ifndef API_PROBLEM_H
#define API_PROBLEM_H

#include <stddef.h>

#define API_DETAIL_MAX 320

struct api_problem {
	const char *code;            /* catalogue entry, NULL: no problem */
	char detail[API_DETAIL_MAX];
};

struct api_problem_type {
	const char *code;
	int status;
	const char *title;
};

/* The catalogue, in documentation order; n receives its length. */
const struct api_problem_type *api_problem_catalogue(size_t *n);

/* The catalogue entry of a code; NULL when unknown. */
const struct api_problem_type *api_problem_type(const char *code);

/*
 * Fills p with a catalogue code and a printf-style detail; returns -1 so
 * that `return api_fail(p, "unknown_field", ...)` reads as one step.
 */
int api_fail(struct api_problem *p, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The problem code for a core error code (vm_errname's table). */
const char *api_code_for_vm_error(int vm_code);

#endif
