/*
 * json.h - strict JSON in, and typed fields out of it.
 *
 * cJSON 1.7.15 alone rounds integers above 2^53, keeps duplicate keys and
 * does not check UTF-8, so a body is first scanned as raw text against RFC
 * 8259: exactly one value with only whitespace around it, valid UTF-8
 * (no overlong forms, no surrogates), valid escapes, no control characters
 * in strings, nesting at most API_JSON_MAX_DEPTH deep, no key twice in an
 * object, and no integer literal beyond 2^53 - 1 in magnitude (bigger
 * values travel as strings: SPEC 2.1). Only then does cJSON build the tree.
 *
 * The field readers take a value from an object and say precisely what is
 * wrong with it: 400 wrong_type for the wrong JSON type, 422 for a value
 * out of its range, and 422 unknown_field for a name the endpoint does not
 * take (api_json_only).
 */
#ifndef API_JSON_H
#define API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "problem.h"

#define API_JSON_MAX_DEPTH 32
#define API_MAX_SAFE_INT 9007199254740991ULL /* 2^53 - 1 */

/*
 * Parses len bytes as one strict JSON value. An empty body (len 0) gives
 * an empty object. On success *out is the caller's (cJSON_Delete).
 */
int api_json_parse(const char *text, size_t len, cJSON **out,
		   struct api_problem *p);

/* Refuses any member of obj not named in allowed (NULL-terminated). */
int api_json_only(const cJSON *obj, const char *const allowed[],
		  struct api_problem *p);

/*
 * Typed readers. Each returns 0 and sets *present (when given) to whether
 * the field was there; an absent field leaves *v untouched. -1 with p
 * filled when the field is there but unusable.
 */

/* An unsigned integer: a JSON number (<= 2^53 - 1) or a string, hex
 * ("0x1f") or decimal. */
int api_json_u64(const cJSON *obj, const char *name, uint64_t *v,
		 bool *present, struct api_problem *p);

/* A signed integer, as above, with an optional leading '-'. */
int api_json_i64(const cJSON *obj, const char *name, int64_t *v,
		 bool *present, struct api_problem *p);

/* A size: as api_json_u64, or a string with a unit B, KiB, MiB, GiB, TiB
 * ("4KiB", "1 GiB"). */
int api_json_size(const cJSON *obj, const char *name, uint64_t *v,
		  bool *present, struct api_problem *p);

int api_json_bool(const cJSON *obj, const char *name, bool *v, bool *present,
		  struct api_problem *p);

/* A string of at most max bytes (copied into buf of max + 1 bytes). */
int api_json_str(const cJSON *obj, const char *name, char *buf, size_t max,
		 bool *present, struct api_problem *p);

/* Parses text as an unsigned integer the way the readers do (hex with 0x,
 * or decimal; with units when `units`). Returns 0 or -1 (overflow, junk). */
int api_parse_u64(const char *text, bool units, uint64_t *v);

/*
 * Replaces each byte of s that is not part of a valid UTF-8 sequence
 * with '?', in place: a problem's detail quotes what a client sent (a
 * path percent-decoded to any bytes, cut at a length), and JSON text is
 * UTF-8 (RFC 8259 8.1).
 */
void api_utf8_scrub(char *s);

#endif
