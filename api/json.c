/* json.c - strict JSON scanning and typed fields; see json.h. */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---- the strict scanner ---- */

struct scan {
	const unsigned char *s, *end;
	int depth;
	struct api_problem *p;
};

static int bad(struct scan *sc, const unsigned char *at, const char *what)
{
	return api_fail(sc->p, "malformed_json", "%s at byte %zu", what,
			(size_t)(at - sc->s));
}

static void skip_ws(struct scan *sc, const unsigned char **at)
{
	while (*at < sc->end &&
	       (**at == ' ' || **at == '\t' || **at == '\n' || **at == '\r'))
		(*at)++;
}

/* Length of one valid UTF-8 sequence at at, or 0 (RFC 3629). */
static int utf8_len(const unsigned char *at, const unsigned char *end)
{
	unsigned c = at[0];
	int n;
	unsigned min, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (end - at < n)
		return 0;
	for (int i = 1; i < n; i++) {
		if ((at[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (at[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void api_utf8_scrub(char *s)
{
	unsigned char *at = (unsigned char *)s;
	const unsigned char *end = at + strlen(s);

	while (at < end) {
		int n = utf8_len(at, end);

		if (n == 0)
			*at++ = '?';
		else
			at += n;
	}
}

static int hex4(const unsigned char *at, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int c = at[i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* A growable byte buffer for a decoded key. */
struct text {
	char *s;
	size_t len, cap;
};

static void text_put(struct text *t, const char *p, size_t n)
{
	if (!t)
		return;
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->s = realloc(t->s, t->cap);
		if (!t->s)
			abort();
	}
	memcpy(t->s + t->len, p, n);
	t->len += n;
	t->s[t->len] = '\0';
}

/* Appends code point cp as UTF-8. */
static void text_cp(struct text *t, unsigned cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	text_put(t, b, n);
}

/*
 * Scans a string starting at its quote; on success *at is past the closing
 * quote, and key (when given) holds the decoded text, so that keys written
 * with different escapes compare equal. U+0000 is refused: C strings
 * cannot carry it, and a value cut short at it would be read as another.
 */
static int scan_string(struct scan *sc, const unsigned char **at,
		       struct text *key)
{
	const unsigned char *q = *at + 1;

	for (;;) {
		unsigned char c;

		if (q >= sc->end)
			return bad(sc, *at, "unterminated string");
		c = *q;
		if (c == '"')
			break;
		if (c < 0x20)
			return bad(sc, q, "control character in a string");
		if (c == '\\') {
			unsigned u, lo;
			char out = 0;

			if (sc->end - q < 2)
				return bad(sc, q, "unterminated escape");
			switch (q[1]) {
			case '"': case '\\': case '/':
				out = (char)q[1];
				break;
			case 'b': out = '\b'; break;
			case 'f': out = '\f'; break;
			case 'n': out = '\n'; break;
			case 'r': out = '\r'; break;
			case 't': out = '\t'; break;
			case 'u':
				if (sc->end - q < 6 || hex4(q + 2, &u))
					return bad(sc, q, "bad \\u escape");
				if (u >= 0xdc00 && u <= 0xdfff)
					return bad(sc, q, "lone low surrogate");
				if (u >= 0xd800 && u <= 0xdbff) {
					if (sc->end - q < 12 || q[6] != '\\' ||
					    q[7] != 'u' || hex4(q + 8, &lo) ||
					    lo < 0xdc00 || lo > 0xdfff)
						return bad(sc, q,
							   "lone high surrogate");
					u = 0x10000 + ((u - 0xd800) << 10) +
					    (lo - 0xdc00);
					q += 6;
				}
				if (u == 0)
					return api_fail(
						sc->p,
						key ? "unknown_field"
						    : "invalid_value",
						"a %s contains U+0000 (byte %zu): "
						"no field takes it",
						key ? "member name" : "string",
						(size_t)(q - sc->s));
				text_cp(key, u);
				q += 6;
				continue;
			default:
				return bad(sc, q, "bad escape");
			}
			text_put(key, &out, 1);
			q += 2;
			continue;
		}
		{
			int len = utf8_len(q, sc->end);

			if (!len)
				return bad(sc, q, "invalid UTF-8");
			text_put(key, (const char *)q, (size_t)len);
			q += len;
		}
	}
	*at = q + 1;
	return 0;
}

static int scan_number(struct scan *sc, const unsigned char **at)
{
	const unsigned char *q = *at, *digits;
	bool integer = true;

	if (q < sc->end && *q == '-')
		q++;
	digits = q;
	if (q >= sc->end || !isdigit(*q))
		return bad(sc, *at, "bad number");
	if (*q == '0' && q + 1 < sc->end && isdigit(q[1]))
		return bad(sc, *at, "leading zero in a number");
	while (q < sc->end && isdigit(*q))
		q++;
	if (q < sc->end && *q == '.') {
		integer = false;
		q++;
		if (q >= sc->end || !isdigit(*q))
			return bad(sc, *at, "bad fraction");
		while (q < sc->end && isdigit(*q))
			q++;
	}
	if (q < sc->end && (*q == 'e' || *q == 'E')) {
		integer = false;
		q++;
		if (q < sc->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= sc->end || !isdigit(*q))
			return bad(sc, *at, "bad exponent");
		while (q < sc->end && isdigit(*q))
			q++;
	}
	if (!integer) {
		/* A fraction or exponent beyond 2^53 - 1 would be rounded. */
		char buf[64];
		size_t n = (size_t)(q - *at);
		double d;

		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		memcpy(buf, *at, n);
		buf[n] = '\0';
		d = strtod(buf, NULL);
		if (!(d >= -(double)API_MAX_SAFE_INT &&
		      d <= (double)API_MAX_SAFE_INT) &&
		    (size_t)(q - *at) < sizeof(buf))
			return api_fail(sc->p, "imprecise_number",
					"the number at byte %zu is beyond 2^53 - "
					"1; send it as a string (\"0x...\" or "
					"decimal)", (size_t)(*at - sc->s));
	} else {
		/* Compare the digits with "9007199254740991" (2^53 - 1). */
		size_t n = (size_t)(q - digits);
		static const char max[] = "9007199254740991";

		if (n > sizeof(max) - 1 ||
		    (n == sizeof(max) - 1 && memcmp(digits, max, n) > 0))
			return api_fail(sc->p, "imprecise_number",
					"the number at byte %zu is beyond 2^53 - "
					"1; send it as a string (\"0x...\" or "
					"decimal)", (size_t)(*at - sc->s));
	}
	*at = q;
	return 0;
}

static int scan_value(struct scan *sc, const unsigned char **at);

/* Keys seen in one object, decoded, for the duplicate check. */
struct keyset {
	struct text *keys;
	size_t n, cap;
};

static void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->keys[i].s);
	free(ks->keys);
}

static int scan_object(struct scan *sc, const unsigned char **at)
{
	const unsigned char *q = *at + 1;
	struct keyset ks = { NULL, 0, 0 };
	int rc = 0;

	skip_ws(sc, &q);
	if (q < sc->end && *q == '}') {
		*at = q + 1;
		return 0;
	}
	for (;;) {
		struct text key = { NULL, 0, 0 };

		skip_ws(sc, &q);
		if (q >= sc->end || *q != '"') {
			rc = bad(sc, q, "expected a member name");
			break;
		}
		text_put(&key, "", 0);
		if ((rc = scan_string(sc, &q, &key))) {
			free(key.s);
			break;
		}
		for (size_t i = 0; i < ks.n; i++)
			if (ks.keys[i].len == key.len &&
			    memcmp(ks.keys[i].s, key.s, key.len) == 0) {
				rc = api_fail(sc->p, "duplicate_key",
					      "the key \"%.40s\" appears twice "
					      "in one object", key.s);
				break;
			}
		if (rc) {
			free(key.s);
			break;
		}
		if (ks.n == ks.cap) {
			ks.cap = ks.cap ? ks.cap * 2 : 8;
			ks.keys = realloc(ks.keys, ks.cap * sizeof(*ks.keys));
			if (!ks.keys)
				abort();
		}
		ks.keys[ks.n++] = key;
		skip_ws(sc, &q);
		if (q >= sc->end || *q != ':') {
			rc = bad(sc, q, "expected ':'");
			break;
		}
		q++;
		if ((rc = scan_value(sc, &q)))
			break;
		skip_ws(sc, &q);
		if (q < sc->end && *q == ',') {
			q++;
			continue;
		}
		if (q < sc->end && *q == '}') {
			*at = q + 1;
			break;
		}
		rc = bad(sc, q, "expected ',' or '}'");
		break;
	}
	keyset_free(&ks);
	return rc;
}

static int scan_array(struct scan *sc, const unsigned char **at)
{
	const unsigned char *q = *at + 1;

	skip_ws(sc, &q);
	if (q < sc->end && *q == ']') {
		*at = q + 1;
		return 0;
	}
	for (;;) {
		if (scan_value(sc, &q))
			return -1;
		skip_ws(sc, &q);
		if (q < sc->end && *q == ',') {
			q++;
			continue;
		}
		if (q < sc->end && *q == ']') {
			*at = q + 1;
			return 0;
		}
		return bad(sc, q, "expected ',' or ']'");
	}
}

static int literal(struct scan *sc, const unsigned char **at, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(sc->end - *at) < n || memcmp(*at, w, n))
		return bad(sc, *at, "unexpected token");
	*at += n;
	return 0;
}

static int scan_value(struct scan *sc, const unsigned char **at)
{
	int rc;

	skip_ws(sc, at);
	if (*at >= sc->end)
		return bad(sc, *at, "expected a value");
	switch (**at) {
	case '{':
	case '[':
		if (++sc->depth > API_JSON_MAX_DEPTH)
			return api_fail(sc->p, "malformed_json",
					"nesting deeper than %d levels",
					API_JSON_MAX_DEPTH);
		rc = **at == '{' ? scan_object(sc, at) : scan_array(sc, at);
		sc->depth--;
		return rc;
	case '"':
		return scan_string(sc, at, NULL);
	case 't':
		return literal(sc, at, "true");
	case 'f':
		return literal(sc, at, "false");
	case 'n':
		return literal(sc, at, "null");
	default:
		return scan_number(sc, at);
	}
}

int api_json_parse(const char *text, size_t len, cJSON **out,
		   struct api_problem *p)
{
	struct scan sc = { (const unsigned char *)text,
			   (const unsigned char *)text + len, 0, p };
	const unsigned char *at = sc.s;

	if (len == 0) {
		*out = cJSON_CreateObject();
		return 0;
	}
	if (scan_value(&sc, &at))
		return -1;
	skip_ws(&sc, &at);
	if (at != sc.end)
		return bad(&sc, at, "data after the JSON value");
	*out = cJSON_ParseWithLength(text, len);
	if (!*out)
		return api_fail(p, "malformed_json", "the body is not JSON");
	return 0;
}

/* ---- fields ---- */

int api_json_only(const cJSON *obj, const char *const allowed[],
		  struct api_problem *p)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj) {
		size_t i;

		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], it->string) == 0)
				break;
		if (!allowed[i])
			return api_fail(p, "unknown_field",
					"unknown field \"%.64s\": this endpoint "
					"takes no such field", it->string);
	}
	return 0;
}

static const struct {
	const char *name;
	unsigned shift;
} units[] = {
	{ "B", 0 }, { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 }, { "TiB", 40 },
};

int api_parse_u64(const char *t, bool with_units, uint64_t *v)
{
	uint64_t x = 0;
	unsigned base = 10, digits = 0;
	const char *q = t;

	if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
		base = 16;
		q += 2;
	}
	for (; *q; q++, digits++) {
		unsigned d;

		if (*q >= '0' && *q <= '9')
			d = (unsigned)(*q - '0');
		else if (base == 16 && *q >= 'a' && *q <= 'f')
			d = (unsigned)(*q - 'a' + 10);
		else if (base == 16 && *q >= 'A' && *q <= 'F')
			d = (unsigned)(*q - 'A' + 10);
		else
			break;
		if (x > (UINT64_MAX - d) / base)
			return -1;
		x = x * base + d;
	}
	if (digits == 0)
		return -1;
	if (*q && with_units && base == 10) {
		if (*q == ' ')
			q++;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(q, units[i].name) == 0) {
				if (x > (UINT64_MAX >> units[i].shift))
					return -1;
				*v = x << units[i].shift;
				return 0;
			}
		return -1;
	}
	if (*q)
		return -1;
	*v = x;
	return 0;
}

static int read_u64(const cJSON *obj, const char *name, uint64_t *v,
		    bool *present, bool with_units, struct api_problem *p)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (present)
		*present = f != NULL;
	if (!f)
		return 0;
	if (cJSON_IsNumber(f)) {
		double d = f->valuedouble;

		/* The scanner let through no integer beyond 2^53 - 1. */
		if (!(d >= 0 && d <= (double)API_MAX_SAFE_INT) ||
		    d != (double)(uint64_t)d)
			return api_fail(p, d < 0 ? "out_of_range" : "wrong_type",
					"%s: must be a non-negative integer",
					name);
		*v = (uint64_t)d;
		return 0;
	}
	if (cJSON_IsString(f)) {
		if (api_parse_u64(f->valuestring, with_units, v))
			return api_fail(p, "invalid_value",
					"%s: \"%.40s\" is not %s", name,
					f->valuestring,
					with_units
						? "a size (bytes, \"0x1000\", "
						  "\"4KiB\", \"1GiB\") up to "
						  "2^64 - 1"
						: "an integer (\"0x1f\" or "
						  "decimal) up to 2^64 - 1");
		return 0;
	}
	return api_fail(p, "wrong_type",
			"%s: must be a number or a string", name);
}

int api_json_u64(const cJSON *obj, const char *name, uint64_t *v,
		 bool *present, struct api_problem *p)
{
	return read_u64(obj, name, v, present, false, p);
}

int api_json_size(const cJSON *obj, const char *name, uint64_t *v,
		  bool *present, struct api_problem *p)
{
	return read_u64(obj, name, v, present, true, p);
}

int api_json_i64(const cJSON *obj, const char *name, int64_t *v,
		 bool *present, struct api_problem *p)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
	uint64_t mag;
	bool neg = false;
	const char *t;

	if (present)
		*present = f != NULL;
	if (!f)
		return 0;
	if (cJSON_IsNumber(f)) {
		double d = f->valuedouble;

		if (!(d >= -(double)API_MAX_SAFE_INT &&
		      d <= (double)API_MAX_SAFE_INT) ||
		    d != (double)(int64_t)d)
			return api_fail(p, "wrong_type",
					"%s: must be an integer", name);
		*v = (int64_t)d;
		return 0;
	}
	if (!cJSON_IsString(f))
		return api_fail(p, "wrong_type",
				"%s: must be a number or a string", name);
	t = f->valuestring;
	if (*t == '-') {
		neg = true;
		t++;
	}
	if (api_parse_u64(t, false, &mag) ||
	    mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
		return api_fail(p, "invalid_value",
				"%s: \"%.40s\" is not a signed 64-bit integer",
				name, f->valuestring);
	*v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}

int api_json_bool(const cJSON *obj, const char *name, bool *v, bool *present,
		  struct api_problem *p)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (present)
		*present = f != NULL;
	if (!f)
		return 0;
	if (!cJSON_IsBool(f))
		return api_fail(p, "wrong_type", "%s: must be true or false",
				name);
	*v = cJSON_IsTrue(f);
	return 0;
}

int api_json_str(const cJSON *obj, const char *name, char *buf, size_t max,
		 bool *present, struct api_problem *p)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (present)
		*present = f != NULL;
	if (!f)
		return 0;
	if (!cJSON_IsString(f))
		return api_fail(p, "wrong_type", "%s: must be a string", name);
	if (strlen(f->valuestring) > max)
		return api_fail(p, "invalid_value",
				"%s: at most %zu bytes", name, max);
	strcpy(buf, f->valuestring);
	return 0;
}
