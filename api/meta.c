/* meta.c - the service's own resources: /healthz, /metrics, /v1 and the
 * OpenAPI description. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int api_healthz(struct api_call *c)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "status", "ok");
	return api_reply(c, 200, o);
}

int api_metrics(struct api_call *c)
{
	char *text;

	if (!c->ctx->metrics)
		return api_fail(&c->prob, "not_found",
				"this server keeps no metrics");
	text = c->ctx->metrics(c->ctx->metrics_cls);
	c->resp->status = 200;
	c->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	c->resp->body = text;
	c->resp->body_len = strlen(text);
	return 0;
}

int api_index(struct api_call *c)
{
	cJSON *o = cJSON_CreateObject(), *links;

	cJSON_AddStringToObject(o, "name", "vmlab");
	cJSON_AddStringToObject(o, "version",
				c->ctx->config.version ? c->ctx->config.version
						       : "unknown");
	links = cJSON_AddObjectToObject(o, "links");
	cJSON_AddStringToObject(links, "machines", "/v1/machines");
	cJSON_AddStringToObject(links, "tenants", "/v1/tenants");
	cJSON_AddStringToObject(links, "whoami", "/v1/whoami");
	cJSON_AddStringToObject(links, "openapi", "/v1/openapi.json");
	cJSON_AddStringToObject(links, "health", "/healthz");
	cJSON_AddStringToObject(links, "metrics", "/metrics");
	cJSON_AddStringToObject(links, "problems", "/problems/{code}");
	return api_reply(c, 200, o);
}

int api_openapi(struct api_call *c)
{
	const struct api_config *cf = &c->ctx->config;

	if (!cf->openapi)
		return api_fail(&c->prob, "not_found",
				"this server carries no OpenAPI description");
	c->resp->status = 200;
	c->resp->content_type = "application/json";
	c->resp->body = malloc(cf->openapi_len);
	if (!c->resp->body)
		abort();
	memcpy(c->resp->body, cf->openapi, cf->openapi_len);
	c->resp->body_len = cf->openapi_len;
	return 0;
}
