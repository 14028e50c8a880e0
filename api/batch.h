/*
 * batch.h - translations in and out of JSON without a cJSON tree.
 *
 * A batch of 1,000 translations costs far more as cJSON (some 20,000
 * nodes and strings built, printed and freed, around 3 us an item) than
 * the walks themselves, so POST .../translate/batch reads its body in one
 * pass over the raw text (api_batch_read) and writes its answer straight
 * into one growing buffer (api_writer_put).
 *
 * The reader takes a body only in the plain form clients send: one
 * member "items", each item an object of the translate fields spelled
 * without escapes, each at most once, with integers as plain JSON
 * numbers or as printable ASCII strings, and every value one the route
 * accepts. Whatever else (an escape, a byte outside printable ASCII, a
 * fraction, an exponent, a null, a field unknown or repeated, a value out
 * of range, too many items, any malformed text) it declines, and the
 * route answers that body as it always did: strict scan (json.h), cJSON
 * tree, field readers. So a refused batch gets the same problem, code and
 * detail and precedence, by construction; what the reader must do is
 * never take a body the strict path refuses, and read what it takes into
 * the same requests. tests/api/test_batch.c checks both over seeded
 * random and hostile bodies, and the writer's bytes against cJSON's.
 */
#ifndef API_BATCH_H
#define API_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/translate.h"

struct vm_machine;

/* One request of a batch, as read_translate would read it. */
struct api_batch_item {
	struct vm_translate_req req;
	bool explain;
};

struct api_batch {
	struct api_batch_item *items;
	size_t n, cap;
};

/*
 * Reads a batch body of len bytes (text need not end in NUL). 0 with b
 * filled (free it with api_batch_free); -1 when the body is not in the
 * plain form, with b empty: the caller then answers it the strict way.
 */
int api_batch_read(const char *text, size_t len, struct api_batch *b);
void api_batch_free(struct api_batch *b);

/* A malloc'd byte buffer that grows; s is not NUL-terminated. */
struct api_buf {
	char *s;
	size_t len, cap;
};

/* Makes room for `more` bytes after len. */
void api_buf_reserve(struct api_buf *b, size_t more);
void api_buf_put(struct api_buf *b, const char *s, size_t n);
/* A string literal, its length known where it is written. */
#define API_BUF_LIT(b, lit) api_buf_put(b, lit, sizeof(lit) - 1)

/* Appends s as a JSON string, escaped as cJSON's print_string_ptr does. */
void api_buf_string(struct api_buf *b, const char *s);

/* A name as JSON text (quoted, escaped); n 0: not kept (too long). */
#define API_NAME_JSON 47
struct api_name_json {
	unsigned char n;
	char s[API_NAME_JSON];
};

/*
 * Writes translations made on one machine into buf as the object
 * translate answers: the bytes cJSON_PrintUnformatted gives for
 * translate.c's tree of it. The names every answer has (mode, access,
 * region) are escaped once, in api_writer_init, not once an answer.
 * buf starts empty and is the caller's (to free, or to hand on).
 */
struct api_writer {
	struct api_buf buf;
	const struct vm_machine *m;
	const struct vm_arch *arch;
	struct api_name_json mode[VM_MODE_KERNEL + 1];
	struct api_name_json access[VM_ACCESS_EXEC + 1];
	struct api_name_json region[VM_REGION_FIXMAP + 1];
};

void api_writer_init(struct api_writer *w, const struct vm_machine *m);
void api_writer_put(struct api_writer *w, const struct vm_translation *t,
		    bool explain);

/*
 * Writes (double)v as cJSON prints a number into buf (at least 32
 * bytes); returns the length. Integers below 10^15 print as themselves.
 */
size_t api_json_number(char *buf, uint64_t v);

/*
 * For tests: with `on`, both translate routes answer the way they did
 * before this file (cJSON in and out), the reference the fast path is
 * compared with. The daemon never sets it; not for concurrent use.
 */
void api_translate_use_reference(bool on);

#endif
