/*
 * routes_dump.c - prints the API's route table and problem catalogue as
 * JSON, so that the HTTP tests derive their coverage from the table itself
 * (OpenAPI both ways, hostile input for every route and field, the
 * problem catalogue in docs/problems.md).
 */
#include <stdio.h>

#include "api/internal.h"

static const char *const kinds[] = {
	[API_F_U64] = "u64",   [API_F_I64] = "i64",       [API_F_SIZE] = "size",
	[API_F_BOOL] = "bool", [API_F_STRING] = "string", [API_F_ITEMS] = "items",
	[API_F_QUOTA] = "quota",
};

/* Who may call a route (api/internal.h enum api_need). */
static const char *const needs[] = {
	[API_NEED_NONE] = "public",     [API_NEED_CALLER] = "any",
	[API_NEED_OBSERVER] = "observer", [API_NEED_ADMIN] = "admin",
	[API_NEED_CREATOR] = "creator", [API_NEED_READ] = "read",
	[API_NEED_WRITE] = "write",     [API_NEED_OWNER] = "owner",
};

int main(void)
{
	const struct api_route *r;
	const struct api_problem_type *t;
	size_t n;
	cJSON *o = cJSON_CreateObject(), *routes, *problems;
	char *s;

	routes = cJSON_AddArrayToObject(o, "routes");
	for (r = api_routes(); r->method; r++) {
		cJSON *ro = cJSON_CreateObject(), *fields;

		cJSON_AddStringToObject(ro, "method", r->method);
		cJSON_AddStringToObject(ro, "pattern", r->pattern);
		cJSON_AddBoolToObject(ro, "mutates", r->mutates);
		cJSON_AddStringToObject(ro, "need", needs[r->need]);
		if (r->fields) {
			fields = cJSON_AddArrayToObject(ro, "fields");
			for (const struct api_field *f = r->fields; f->name; f++) {
				cJSON *fo = cJSON_CreateObject();

				cJSON_AddStringToObject(fo, "name", f->name);
				cJSON_AddStringToObject(fo, "kind", kinds[f->kind]);
				cJSON_AddItemToArray(fields, fo);
			}
		} else {
			cJSON_AddNullToObject(ro, "fields");
		}
		cJSON_AddItemToArray(routes, ro);
	}
	problems = cJSON_AddArrayToObject(o, "problems");
	t = api_problem_catalogue(&n);
	for (size_t i = 0; i < n; i++) {
		cJSON *po = cJSON_CreateObject();

		cJSON_AddStringToObject(po, "code", t[i].code);
		cJSON_AddNumberToObject(po, "status", t[i].status);
		cJSON_AddStringToObject(po, "title", t[i].title);
		cJSON_AddItemToArray(problems, po);
	}
	s = cJSON_Print(o);
	puts(s);
	cJSON_free(s);
	cJSON_Delete(o);
	return 0;
}
