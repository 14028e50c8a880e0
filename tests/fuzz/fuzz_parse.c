/*
 * fuzz_parse.c - the API's textual number, size and name parsers.
 *
 * Input framing: the first byte chooses the parser (its value modulo
 * the number of parsers below), the rest is the text (up to the first
 * NUL, as a C string would end), or for the number printer the value
 * (eight bytes, little-endian; missing bytes are zero).
 *
 *   0  api_parse_u64 without units: accepts exactly what a reference
 *      reader (written here, with a 128-bit accumulator) accepts, with
 *      the same value; an accepted value printed in decimal and in hex
 *      reads back the same
 *   1  api_parse_u64 with units (B, KiB, MiB, GiB, TiB, one optional
 *      space before): the same, against the reference with units; a
 *      value that would pass 2^64 - 1 once scaled is refused
 *   2  api_json_i64 on {"x": "<text>"}: the reference's signed reading,
 *      INT64_MIN and INT64_MAX at their edges
 *   3  the batch reader (api_batch_read) on {"items":[{"va":<text>}]},
 *      with text as a JSON string and as a bare number: when it takes
 *      the body, the strict path (api_json_parse, api_json_u64) must
 *      take it too, with as many items and the same va in each; when
 *      the text is a plain
 *      unsigned integer, the reader takes it
 *   4  api_json_number: the bytes cJSON prints for (double)v (15
 *      significant digits when they read back within DBL_EPSILON, as
 *      cJSON's print_number decides, else 17)
 *   5  vm_gfp_parse: accepted flags print (vm_gfp_format) as text that
 *      reads back as the same flags
 *   6  vm_vmsplit_parse, vm_mode_parse, vm_access_parse, vm_prot_parse:
 *      accepted names print as themselves, protections stay in rwx
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/batch.h"
#include "api/json.h"
#include "core/gfp.h"
#include "core/layout.h"
#include "core/process.h"
#include "core/translate.h"

#define MAX_TEXT 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text)
{
	fprintf(stderr, "fuzz_parse: %s: \"%s\"\n", what, text);
	abort();
}

/* ---- the reference reader: obviously right, not fast ---- */

static int ref_digit(char c, unsigned base)
{
	int d = -1;

	if (c >= '0' && c <= '9')
		d = c - '0';
	else if (c >= 'a' && c <= 'f')
		d = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		d = c - 'A' + 10;
	return d >= 0 && (unsigned)d < base ? d : -1;
}

/*
 * Hex after "0x" or "0X", else decimal; at least one digit; then, with
 * units and in decimal only, an optional space and a unit; nothing else.
 */
static bool ref_u64(const char *t, bool units, uint64_t *v)
{
	static const char *const names[] = { "B", "KiB", "MiB", "GiB",
					      "TiB" };
	unsigned __int128 x = 0;
	unsigned base = 10;
	size_t n = 0;

	if (t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
		base = 16;
		t += 2;
	}
	for (; ref_digit(t[n], base) >= 0; n++) {
		x = x * base + (unsigned)ref_digit(t[n], base);
		if (x > UINT64_MAX)
			return false;
	}
	if (n == 0)
		return false;
	t += n;
	if (*t && units && base == 10) {
		if (*t == ' ')
			t++;
		for (unsigned i = 0; i < 5; i++)
			if (strcmp(t, names[i]) == 0) {
				x <<= 10 * i;
				if (x > UINT64_MAX)
					return false;
				*v = (uint64_t)x;
				return true;
			}
		return false;
	}
	if (*t)
		return false;
	*v = (uint64_t)x;
	return true;
}

static void parse_u64(const char *t, bool units)
{
	uint64_t got = 0, want = 0, back;
	bool ok = api_parse_u64(t, units, &got) == 0;
	char buf[32];

	if (ok != ref_u64(t, units, &want))
		fail(ok ? "api_parse_u64 takes what it should refuse"
			: "api_parse_u64 refuses what it should take", t);
	if (!ok)
		return;
	if (got != want)
		fail("api_parse_u64 reads another value", t);
	snprintf(buf, sizeof(buf), "%" PRIu64, got);
	if (api_parse_u64(buf, units, &back) || back != got)
		fail("a value does not read back in decimal", t);
	snprintf(buf, sizeof(buf), "0x%" PRIx64, got);
	if (api_parse_u64(buf, units, &back) || back != got)
		fail("a value does not read back in hex", t);
}

/* ---- api_json_i64 ---- */

static void parse_i64(const char *t)
{
	cJSON *o = cJSON_CreateObject();
	struct api_problem p;
	int64_t got = 0;
	uint64_t mag;
	bool neg = t[0] == '-', want_ok;

	cJSON_AddStringToObject(o, "x", t);
	want_ok = ref_u64(t + neg, false, &mag) &&
		  mag <= (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
	if ((api_json_i64(o, "x", &got, NULL, &p) == 0) != want_ok)
		fail("api_json_i64 disagrees with the reference", t);
	if (want_ok && (neg ? (uint64_t)0 - (uint64_t)got : (uint64_t)got) !=
			       mag)
		fail("api_json_i64 reads another value", t);
	cJSON_Delete(o);
}

/* ---- the batch reader against the strict path ---- */

static void batch_one(const char *body, const char *t, bool plain)
{
	struct api_batch b = { 0 };
	struct api_problem p;
	cJSON *o = NULL;
	const cJSON *items;
	int took = api_batch_read(body, strlen(body), &b) == 0;

	if (plain && !took)
		fail("the batch reader declines a plain integer", t);
	if (!took)
		return;
	/* The text may hold more JSON than one value: compare it all. */
	if (api_json_parse(body, strlen(body), &o, &p))
		fail("the batch reader takes what the scanner refuses", t);
	items = cJSON_GetObjectItemCaseSensitive(o, "items");
	if ((size_t)cJSON_GetArraySize(items) != b.n)
		fail("the batch reader reads another number of items", t);
	for (size_t i = 0; i < b.n; i++) {
		const cJSON *it = cJSON_GetArrayItem(items, (int)i);
		uint64_t va = 0;
		bool present;

		if (api_json_u64(it, "va", &va, &present, &p) || !present)
			fail("the batch reader takes a va the field reader "
			     "refuses", t);
		if (va != b.items[i].req.va)
			fail("the batch reader reads another va", t);
	}
	cJSON_Delete(o);
	api_batch_free(&b);
}

static void batch(const char *t)
{
	char body[MAX_TEXT + 64];
	uint64_t v;
	bool printable = true;

	for (const char *q = t; *q; q++)
		if (*q < 0x20 || *q > 0x7e || *q == '"' || *q == '\\')
			printable = false;
	snprintf(body, sizeof(body), "{\"items\":[{\"va\":\"%s\"}]}", t);
	batch_one(body, t, printable && ref_u64(t, false, &v));
	snprintf(body, sizeof(body), "{\"items\":[{\"va\":%s}]}", t);
	batch_one(body, t, false);
}

/* ---- the number printer against cJSON's ---- */

static void number(const uint8_t *d, size_t n)
{
	uint64_t v = 0;
	char buf[40], *c;
	cJSON *num;
	size_t len;

	for (size_t i = 0; i < 8 && i < n; i++)
		v |= (uint64_t)d[i] << (8 * i);
	len = api_json_number(buf, v);
	buf[len] = '\0';
	num = cJSON_CreateNumber((double)v);
	c = cJSON_PrintUnformatted(num);
	if (strcmp(c, buf) != 0)
		fail("api_json_number prints another number than cJSON", buf);
	free(c);
	cJSON_Delete(num);
}

/* ---- names ---- */

static void gfp(const char *t)
{
	uint32_t flags, back;
	struct vm_error err = { 0, "" };
	char buf[512];

	if (vm_gfp_parse(t, &flags, &err))
		return;
	vm_gfp_format(flags, buf, sizeof(buf));
	if (vm_gfp_parse(buf, &back, &err) || back != flags)
		fail("gfp flags do not read back", t);
}

static void names(const char *t)
{
	int v = vm_vmsplit_parse(t);

	if (v >= 0 && strcmp(vm_vmsplit_name(v), t) != 0)
		fail("a vmsplit is not named as it was read", t);
	v = vm_mode_parse(t);
	if (v >= 0 && strcmp(vm_mode_name(v), t) != 0)
		fail("a mode is not named as it was read", t);
	v = vm_access_parse(t);
	if (v >= 0 && strcmp(vm_access_name(v), t) != 0)
		fail("an access is not named as it was read", t);
	v = vm_prot_parse(t);
	if (v < -1 || v > 7)
		fail("a protection beyond rwx", t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char t[MAX_TEXT + 1];
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1 < MAX_TEXT ? size - 1 : MAX_TEXT;
	memcpy(t, data + 1, n);
	t[n] = '\0';
	switch (data[0] % 7) {
	case 0:
		parse_u64(t, false);
		break;
	case 1:
		parse_u64(t, true);
		break;
	case 2:
		parse_i64(t);
		break;
	case 3:
		batch(t);
		break;
	case 4:
		number(data + 1, size - 1);
		break;
	case 5:
		gfp(t);
		break;
	default:
		names(t);
		break;
	}
	return 0;
}
