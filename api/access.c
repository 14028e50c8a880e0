/* access.c - the access policy of SPEC part 3; see access.h. */
#include <string.h>

#include "access.h"

enum api_access api_access_for(const struct api_caller *caller,
			       const char *owner,
			       const struct api_share *shares, size_t nshares)
{
	enum api_access a = API_ACCESS_NONE;

	if (caller->role == API_ROLE_ADMIN)
		return API_ACCESS_OWNER;
	if (caller->role == API_ROLE_GRADER)
		return API_ACCESS_READ;   /* whatever a share says */
	if (strcmp(caller->tenant, owner) == 0)
		return API_ACCESS_OWNER;
	for (size_t i = 0; i < nshares; i++) {
		const struct api_share *s = &shares[i];

		if (strcmp(s->tenant, API_EVERYONE) != 0 &&
		    strcmp(s->tenant, caller->tenant) != 0)
			continue;
		if (s->write)
			return API_ACCESS_WRITE;
		a = API_ACCESS_READ;
	}
	return a;
}

bool api_valid_tenant(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > API_TENANT_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      (i > 0 && ch == '-')))
			return false;
	}
	return true;
}

const char *api_role_name(enum api_role r)
{
	switch (r) {
	case API_ROLE_ADMIN:
		return "admin";
	case API_ROLE_GRADER:
		return "grader";
	default:
		return "tenant";
	}
}
