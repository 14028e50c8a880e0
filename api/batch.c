/* batch.c - translations in and out of JSON without a tree; see batch.h. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/machine.h"
#include "batch.h"
#include "internal.h"

/* ---- the reader: the plain form, or nothing ---- */

struct rd {
	const unsigned char *p, *end;
};

static inline void rd_ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' ||
				 *r->p == '\r' || *r->p == '\t'))
		r->p++;
}

/* Skips whitespace, then takes c if it comes next. */
static inline bool rd_take(struct rd *r, unsigned char c)
{
	rd_ws(r);
	if (r->p < r->end && *r->p == c) {
		r->p++;
		return true;
	}
	return false;
}

/*
 * A string of printable ASCII without escapes, from its opening quote:
 * such text is valid UTF-8 and means itself, so the strict scanner and
 * cJSON read it as its bytes. Anything else is declined.
 */
static bool rd_plain_string(struct rd *r, const unsigned char **s, size_t *n)
{
	const unsigned char *q = r->p + 1;

	*s = q;
	for (; q < r->end; q++) {
		if (*q == '"') {
			*n = (size_t)(q - *s);
			r->p = q + 1;
			return true;
		}
		if (*q < 0x20 || *q > 0x7e || *q == '\\')
			return false;
	}
	return false;
}

/* A hex digit's value plus one, 0 for any other byte: no branch on
 * which kind of digit it is, which random addresses would mispredict. */
static const unsigned char hexval[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6,
	['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/*
 * A string for an integer field, from its opening quote: what
 * api_parse_u64 takes without units (hex after "0x" or "0X", else
 * decimal; at least one digit; no overflow), read as the string is
 * scanned. Any other byte before the closing quote declines: it is
 * either something api_parse_u64 refuses or an escape it never sees.
 */
static bool rd_u64_string(struct rd *r, uint64_t *v)
{
	/* 2^64 - 1 is max10 * 10 + UINT64_MAX % 10 (that is, 5). */
	const uint64_t max10 = UINT64_MAX / 10;
	const unsigned char *q = r->p + 1, *digits;
	uint64_t x = 0;
	unsigned d;

	if (r->end - q >= 2 && q[0] == '0' && (q[1] | 0x20) == 'x') {
		/* Overflow as x > (UINT64_MAX - d) / 16: any of the top
		 * four bits set before the shift. */
		for (digits = q += 2; q < r->end && (d = hexval[*q]); q++) {
			if (x >> 60)
				return false;
			x = x << 4 | (d - 1);
		}
	} else {
		/* x > (UINT64_MAX - d) / 10, without the division. */
		for (digits = q; q < r->end && (d = *q - (unsigned)'0') <= 9;
		     q++) {
			if (x > max10 || (x == max10 && d > UINT64_MAX % 10))
				return false;
			x = x * 10 + d;
		}
	}
	if (q == digits || q >= r->end || *q != '"')
		return false;
	r->p = q + 1;
	*v = x;
	return true;
}

/*
 * An unsigned integer field: a JSON integer written without sign,
 * fraction or exponent, at most 2^53 - 1 (beyond, the scanner refuses
 * it), or a string as above.
 */
static bool rd_u64(struct rd *r, uint64_t *v)
{
	size_t n;
	uint64_t x = 0;

	if (r->p >= r->end)
		return false;
	if (*r->p == '"')
		return rd_u64_string(r, v);
	if (*r->p < '0' || *r->p > '9')
		return false;
	if (*r->p == '0') {
		/* "0" alone; "01" is a leading zero the scanner refuses. */
		r->p++;
		*v = 0;
		return !(r->p < r->end && *r->p >= '0' && *r->p <= '9');
	}
	for (n = 0; r->p < r->end && *r->p >= '0' && *r->p <= '9'; n++) {
		if (n == 16)
			return false;
		x = x * 10 + (uint64_t)(*r->p++ - '0');
	}
	if (x > API_MAX_SAFE_INT)
		return false;
	*v = x;
	return true;
}

/* A plain string that is one of names[]; its index in *v. */
static bool rd_name(struct rd *r, const char *const names[], int *v)
{
	const unsigned char *s;
	size_t n;

	if (r->p >= r->end || *r->p != '"' || !rd_plain_string(r, &s, &n))
		return false;
	for (int i = 0; names[i]; i++)
		if (strncmp(names[i], (const char *)s, n) == 0 &&
		    names[i][n] == '\0') {
			*v = i;
			return true;
		}
	return false;
}

static bool rd_bool(struct rd *r, bool *v)
{
	size_t left = (size_t)(r->end - r->p);

	if (left >= 4 && memcmp(r->p, "true", 4) == 0) {
		r->p += 4;
		*v = true;
		return true;
	}
	if (left >= 5 && memcmp(r->p, "false", 5) == 0) {
		r->p += 5;
		*v = false;
		return true;
	}
	return false;
}

enum { K_VA, K_CPU, K_PID, K_MODE, K_ACCESS, K_EXPLAIN };

/*
 * The translate field a member name names, from its opening quote to
 * past its closing one; -1 for any other name, or one with an escape.
 * The first letter tells which name it can be; the rest is compared
 * with its closing quote, at a length known here.
 */
static inline int key_rest(struct rd *r, const char *rest, size_t n, int k)
{
	const unsigned char *q = r->p + 2;

	if ((size_t)(r->end - q) < n || memcmp(q, rest, n) != 0)
		return -1;
	r->p = q + n;
	return k;
}

#define KEY(r, rest, k) key_rest(r, rest, sizeof(rest) - 1, k)

static int rd_key(struct rd *r)
{
	if (r->end - r->p < 2)
		return -1;
	switch (r->p[1]) {
	case 'v':
		return KEY(r, "a\"", K_VA);
	case 'c':
		return KEY(r, "pu\"", K_CPU);
	case 'p':
		return KEY(r, "id\"", K_PID);
	case 'm':
		return KEY(r, "ode\"", K_MODE);
	case 'a':
		return KEY(r, "ccess\"", K_ACCESS);
	case 'e':
		return KEY(r, "xplain\"", K_EXPLAIN);
	default:
		return -1;
	}
}

/* mode and access as vm_mode_parse and vm_access_parse take them. */
static const char *const modes[] = { "user", "kernel", NULL };
static const char *const accesses[] = { "read", "write", "exec", NULL };

/*
 * One item, from its '{': the fields of read_translate, each at most
 * once, with read_translate's checks passed (va given, not cpu and pid
 * both, both below 2^32).
 */
static bool rd_item(struct rd *r, struct api_batch_item *it)
{
	unsigned seen = 0;
	uint64_t cpu = 0, pid = 0;
	int v;

	memset(it, 0, sizeof(*it));
	it->req.mode = VM_MODE_USER;
	it->req.access = VM_ACCESS_READ;
	r->p++;
	if (rd_take(r, '}'))
		return false; /* no va */
	do {
		int k;
		bool ok;

		rd_ws(r);
		if (r->p >= r->end || *r->p != '"' || (k = rd_key(r)) < 0 ||
		    (seen & (1u << k)) || !rd_take(r, ':'))
			return false;
		seen |= 1u << k;
		rd_ws(r);
		switch (k) {
		case K_VA:
			ok = rd_u64(r, &it->req.va);
			break;
		case K_CPU:
			ok = rd_u64(r, &cpu);
			break;
		case K_PID:
			ok = rd_u64(r, &pid);
			break;
		case K_MODE:
			if ((ok = rd_name(r, modes, &v)))
				it->req.mode = (enum vm_mode)v;
			break;
		case K_ACCESS:
			if ((ok = rd_name(r, accesses, &v)))
				it->req.access = (enum vm_access)v;
			break;
		default:
			ok = rd_bool(r, &it->explain);
			break;
		}
		if (!ok)
			return false;
	} while (rd_take(r, ','));
	if (!rd_take(r, '}'))
		return false;
	it->req.has_cpu = seen & (1u << K_CPU);
	it->req.has_pid = seen & (1u << K_PID);
	if (!(seen & (1u << K_VA)) || (it->req.has_cpu && it->req.has_pid) ||
	    cpu > UINT32_MAX || pid > UINT32_MAX)
		return false;
	it->req.cpu = (uint32_t)cpu;
	it->req.pid = (uint32_t)pid;
	return true;
}

static struct api_batch_item *batch_slot(struct api_batch *b)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->items = realloc(b->items, b->cap * sizeof(*b->items));
		if (!b->items)
			abort();
	}
	return &b->items[b->n++];
}

static bool rd_items(struct rd *r, struct api_batch *b)
{
	if (rd_take(r, ']'))
		return true;
	do {
		rd_ws(r);
		if (r->p >= r->end || *r->p != '{' || b->n == API_MAX_BATCH ||
		    !rd_item(r, batch_slot(b)))
			return false;
	} while (rd_take(r, ','));
	return rd_take(r, ']');
}

/* The body: {"items": [...]} and nothing else around it. */
static bool rd_body(struct rd *r, struct api_batch *b)
{
	static const char items[] = "\"items\"";
	const size_t n = sizeof(items) - 1;

	if (!rd_take(r, '{'))
		return false;
	rd_ws(r);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, items, n) != 0)
		return false;
	r->p += n;
	if (!rd_take(r, ':') || !rd_take(r, '[') || !rd_items(r, b) ||
	    !rd_take(r, '}'))
		return false;
	rd_ws(r);
	return r->p == r->end;
}

int api_batch_read(const char *text, size_t len, struct api_batch *b)
{
	struct rd r = { (const unsigned char *)text,
			(const unsigned char *)text + len };

	memset(b, 0, sizeof(*b));
	if (len == 0)
		return -1; /* read as {}: items is missing */
	/* Some 30 bytes an item: one allocation for most batches. */
	b->cap = len / 24 + 1;
	if (b->cap > API_MAX_BATCH)
		b->cap = API_MAX_BATCH;
	b->items = malloc(b->cap * sizeof(*b->items));
	if (!b->items)
		abort();
	if (rd_body(&r, b))
		return 0;
	api_batch_free(b);
	return -1;
}

void api_batch_free(struct api_batch *b)
{
	free(b->items);
	memset(b, 0, sizeof(*b));
}

/* ---- the writer: cJSON_PrintUnformatted's bytes ---- */

void api_buf_reserve(struct api_buf *b, size_t more)
{
	size_t cap;

	if (b->cap - b->len >= more)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < more)
		cap *= 2;
	b->s = realloc(b->s, cap);
	if (!b->s)
		abort();
	b->cap = cap;
}

void api_buf_put(struct api_buf *b, const char *s, size_t n)
{
	api_buf_reserve(b, n);
	memcpy(b->s + b->len, s, n);
	b->len += n;
}

/* api_buf_reserve's test inline: the writer makes some 30 calls an item. */
static inline void need(struct api_buf *b, size_t n)
{
	if (b->cap - b->len < n)
		api_buf_reserve(b, n);
}

static inline void put(struct api_buf *b, const char *s, size_t n)
{
	need(b, n);
	memcpy(b->s + b->len, s, n);
	b->len += n;
}

#define PUT(b, lit) put(b, lit, sizeof(lit) - 1)

static const char hexdigits[] = "0123456789abcdef";

/* "0x1f", or zero-padded to `width` digits: api_hex, api_add_entry. */
static void put_hex(struct api_buf *b, uint64_t v, unsigned width)
{
	unsigned n = v ? (67u - (unsigned)__builtin_clzll(v)) / 4 : 1;
	char *p;

	if (n < width)
		n = width;
	need(b, n + 4);
	p = b->s + b->len;
	p[0] = '"';
	p[1] = '0';
	p[2] = 'x';
	for (unsigned i = n; i > 0; i--, v >>= 4)
		p[2 + i] = hexdigits[v & 15];
	p[n + 3] = '"';
	b->len += n + 4;
}

static inline size_t put_dec(char *p, uint64_t v)
{
	char t[20];
	size_t n = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	for (size_t i = 0; i < n; i++)
		p[i] = t[n - 1 - i];
	return n;
}

static double absd(double x)
{
	return x < 0 ? -x : x;
}

size_t api_json_number(char *buf, uint64_t v)
{
	double d = (double)v, test;
	int n;

	/* Below 10^15, "%1.15g" is the integer itself, as is "%d". */
	if (v < 1000000000000000ULL)
		return put_dec(buf, v);
	/* cJSON's print_number: 15 digits if they read back, else 17. */
	n = snprintf(buf, 32, "%1.15g", d);
	if (sscanf(buf, "%lg", &test) != 1 ||
	    !(absd(test - d) <=
	      (absd(test) > absd(d) ? absd(test) : absd(d)) * DBL_EPSILON))
		n = snprintf(buf, 32, "%1.17g", d);
	return (size_t)n;
}

static void put_number(struct api_buf *b, uint64_t v)
{
	need(b, 32);
	b->len += api_json_number(b->s + b->len, v);
}

/* A string as cJSON's print_string_ptr escapes it. */
void api_buf_string(struct api_buf *b, const char *s)
{
	char *p, *end;

	/* One pass, without strlen: the names are short. Room is made for
	 * the longest escape (6 bytes) and the closing quote at each byte. */
	need(b, 16);
	p = b->s + b->len;
	end = b->s + b->cap;
	*p++ = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (end - p < 8) {
			b->len = (size_t)(p - b->s);
			api_buf_reserve(b, 64);
			p = b->s + b->len;
			end = b->s + b->cap;
		}
		if (c >= 0x20 && c != '"' && c != '\\') {
			*p++ = (char)c;
			continue;
		}
		*p++ = '\\';
		switch (c) {
		case '"': case '\\': *p++ = (char)c; break;
		case '\b': *p++ = 'b'; break;
		case '\f': *p++ = 'f'; break;
		case '\n': *p++ = 'n'; break;
		case '\r': *p++ = 'r'; break;
		case '\t': *p++ = 't'; break;
		default:
			*p++ = 'u';
			*p++ = '0';
			*p++ = '0';
			*p++ = hexdigits[c >> 4];
			*p++ = hexdigits[c & 15];
		}
	}
	*p++ = '"';
	b->len = (size_t)(p - b->s);
}

/*
 * A member whose value is a string. Every name comes from core's tables,
 * none NULL (cJSON_AddStringToObject would leave such a member out).
 */
static void put_str_member(struct api_buf *b, const char *key, size_t klen,
			   const char *v)
{
	put(b, key, klen);
	api_buf_string(b, v);
}

#define STR_MEMBER(b, key, v) put_str_member(b, key, sizeof(key) - 1, v)

static void put_fault(struct api_buf *b, const struct vm_arch *a,
		      const struct vm_translation *t)
{
	STR_MEMBER(b, "{\"kind\":", vm_fault_kind_name(t->fault.kind));
	PUT(b, ",\"error_code\":");
	put_hex(b, t->fault.error_code, 0);
	PUT(b, ",\"linux_error_code\":");
	put_hex(b, t->fault.linux_error_code, 0);
	STR_MEMBER(b, ",\"outcome\":", vm_outcome_name(t->fault.outcome));
	if (t->fault.si_code != VM_SI_NONE) {
		PUT(b, ",\"signal\":\"SIGSEGV\"");
		STR_MEMBER(b, ",\"si_code\":",
			   vm_si_code_name(t->fault.si_code));
	} else {
		PUT(b, ",\"signal\":null,\"si_code\":null");
	}
	if (t->fault.level >= 0)
		STR_MEMBER(b, ",\"level\":", a->level[t->fault.level].name);
	else
		PUT(b, ",\"level\":null");
	STR_MEMBER(b, ",\"reason\":", t->fault.reason);
	PUT(b, "}");
}

static void put_walk(struct api_buf *b, const struct vm_machine *m,
		     const struct vm_arch *a, const struct vm_translation *t)
{
	PUT(b, ",\"walk\":[");
	for (unsigned i = 0; i < t->nwalk; i++) {
		const char *names[12];
		unsigned n = vm_entry_flags(m, t->walk[i].level,
					    t->walk[i].entry, names);

		if (i)
			PUT(b, ",");
		STR_MEMBER(b, "{\"level\":", a->level[t->walk[i].level].name);
		PUT(b, ",\"index\":");
		put_number(b, t->walk[i].index);
		PUT(b, ",\"entry_pa\":");
		put_hex(b, t->walk[i].entry_pa, 0);
		PUT(b, ",\"entry\":");
		put_hex(b, t->walk[i].entry, a->entry_size * 2);
		PUT(b, ",\"flags\":[");
		for (unsigned k = 0; k < n; k++) {
			if (k)
				PUT(b, ",");
			api_buf_string(b, names[k]);
		}
		PUT(b, "]}");
	}
	PUT(b, "]");
}

/* Two digits at a time: "000102...ff". */
static const char hexpairs[513] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* "0x1f" at p, for the head of an answer (room made by the caller). */
static inline char *hex_at(char *p, uint64_t v)
{
	unsigned n = v ? (67u - (unsigned)__builtin_clzll(v)) / 4 : 1;
	char *end = p + 3 + n, *q = end;

	p[0] = '"';
	p[1] = '0';
	p[2] = 'x';
	for (; v >= 0x100; v >>= 8) {
		q -= 2;
		memcpy(q, &hexpairs[(v & 0xff) * 2], 2);
	}
	if (v >= 0x10)
		memcpy(q - 2, &hexpairs[v * 2], 2);
	else
		q[-1] = hexdigits[v];
	*end = '"';
	return end + 1;
}

static inline char *number_at(char *p, uint64_t v)
{
	if (v < 1000000000000000ULL)
		return p + put_dec(p, v);
	return p + api_json_number(p, v);
}

/* A literal at p. */
#define LIT(p, lit) (memcpy(p, lit, sizeof(lit) - 1), p + sizeof(lit) - 1)

/*
 * The head of an answer, from '{' to "fault", is at most this long:
 * members and punctuation 150 bytes, two hex values and three numbers,
 * three names of at most API_NAME_JSON bytes.
 */
#define HEAD_MAX (160 + 2 * 20 + 3 * 24 + 3 * API_NAME_JSON)

/* A name as JSON text into nj, escaped in tmp (one buffer for all). */
static void name_json(struct api_name_json *nj, struct api_buf *tmp,
		      const char *name)
{
	tmp->len = 0;
	api_buf_string(tmp, name);
	nj->n = tmp->len <= API_NAME_JSON ? (unsigned char)tmp->len : 0;
	memcpy(nj->s, tmp->s, nj->n);
}

void api_writer_init(struct api_writer *w, const struct vm_machine *m)
{
	struct api_buf tmp = { NULL, 0, 0 };

	memset(w, 0, sizeof(*w));
	w->m = m;
	w->arch = vm_machine_layout(m)->arch;
	for (int i = 0; i <= VM_MODE_KERNEL; i++)
		name_json(&w->mode[i], &tmp, vm_mode_name((enum vm_mode)i));
	for (int i = 0; i <= VM_ACCESS_EXEC; i++)
		name_json(&w->access[i], &tmp,
			  vm_access_name((enum vm_access)i));
	for (int i = 0; i <= VM_REGION_FIXMAP; i++)
		name_json(&w->region[i], &tmp,
			  vm_region_name((enum vm_region_kind)i));
	free(tmp.s);
}

/*
 * A name escaped now, at p, for one the writer's table does not hold (a
 * value beyond it, or too long): returns where p is next, with HEAD_MAX
 * bytes of room again.
 */
static char *name_now(struct api_buf *b, char *p, const char *name)
{
	b->len = (size_t)(p - b->s);
	api_buf_string(b, name);
	need(b, HEAD_MAX);
	return b->s + b->len;
}

static inline char *name_copy(char *p, const struct api_name_json *nj)
{
	memcpy(p, nj->s, nj->n);
	return p + nj->n;
}

/* Name v of a table at p; namefn is called only when it is not kept. */
#define NAME_AT(b, p, table, v, namefn)                                     \
	((size_t)(v) < sizeof(table) / sizeof((table)[0]) && (table)[v].n     \
		 ? name_copy(p, &(table)[v])                                  \
		 : name_now(b, p, namefn(v)))

void api_writer_put(struct api_writer *w, const struct vm_translation *t,
		    bool explain)
{
	struct api_buf *b = &w->buf;
	char *p;

	/* The head with one test for room: it is the hot part. */
	need(b, HEAD_MAX);
	p = b->s + b->len;
	p = LIT(p, "{\"va\":");
	p = hex_at(p, t->va);
	p = LIT(p, ",\"pid\":");
	p = number_at(p, t->pid);
	p = LIT(p, ",\"cpu\":");
	if (t->via_cpu)
		p = number_at(p, t->cpu);
	else
		p = LIT(p, "null");
	p = LIT(p, ",\"mode\":");
	p = NAME_AT(b, p, w->mode, t->mode, vm_mode_name);
	p = LIT(p, ",\"access\":");
	p = NAME_AT(b, p, w->access, t->access, vm_access_name);
	if (t->ok) {
		p = LIT(p, ",\"ok\":true,\"pa\":");
		p = hex_at(p, t->pa);
	} else {
		p = LIT(p, ",\"ok\":false,\"pa\":null");
	}
	p = LIT(p, ",\"region\":");
	p = NAME_AT(b, p, w->region, t->region, vm_region_name);
	p = LIT(p, ",\"page_size\":");
	if (t->page_size)
		p = number_at(p, t->page_size);
	else
		p = LIT(p, "null");
	if (t->ok && !explain) {
		p = LIT(p, ",\"fault\":null}");
		b->len = (size_t)(p - b->s);
		return;
	}
	b->len = (size_t)(p - b->s);
	PUT(b, ",\"fault\":");
	if (t->ok)
		PUT(b, "null");
	else
		put_fault(b, w->arch, t);
	if (explain)
		put_walk(b, w->m, w->arch, t);
	PUT(b, "}");
}
