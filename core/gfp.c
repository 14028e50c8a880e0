/* gfp.c - GFP flag names and zone selection; see gfp.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "gfp.h"

/* Single flags (gfp.h ___GFP_*, Linux 5.x-6.8 values). */
#define G_RECLAIMABLE 0x10u
#define G_HIGH 0x20u
#define G_IO 0x40u
#define G_FS 0x80u
#define G_ZERO 0x100u
#define G_DIRECT_RECLAIM 0x400u
#define G_KSWAPD_RECLAIM 0x800u
#define G_RECLAIM (G_DIRECT_RECLAIM | G_KSWAPD_RECLAIM)
#define G_HARDWALL 0x100000u
#define G_ACCOUNT 0x400000u

struct gfp_name {
	const char *name;
	uint32_t value;
};

/*
 * Composite names first, largest first, in the order of the kernel's
 * gfpflag_string table (include/trace/events/mmflags.h), then the single
 * flags.
 */
static const struct gfp_name names[] = {
	{ "GFP_HIGHUSER_MOVABLE", VM_GFP_HIGHUSER | VM_GFP_MOVABLE },
	{ "GFP_HIGHUSER", VM_GFP_HIGHUSER },
	{ "GFP_USER", VM_GFP_KERNEL | G_HARDWALL },
	{ "GFP_KERNEL_ACCOUNT", VM_GFP_KERNEL | G_ACCOUNT },
	{ "GFP_KERNEL", VM_GFP_KERNEL },
	{ "GFP_NOFS", G_RECLAIM | G_IO },
	{ "GFP_ATOMIC", G_HIGH | G_KSWAPD_RECLAIM },
	{ "GFP_NOIO", G_RECLAIM },
	{ "GFP_NOWAIT", G_KSWAPD_RECLAIM },
	{ "GFP_DMA", VM_GFP_DMA },
	{ "GFP_DMA32", VM_GFP_DMA32 },
	{ "__GFP_DMA", VM_GFP_DMA },
	{ "__GFP_HIGHMEM", VM_GFP_HIGHMEM },
	{ "__GFP_DMA32", VM_GFP_DMA32 },
	{ "__GFP_MOVABLE", VM_GFP_MOVABLE },
	{ "__GFP_RECLAIMABLE", G_RECLAIMABLE },
	{ "__GFP_HIGH", G_HIGH },
	{ "__GFP_IO", G_IO },
	{ "__GFP_FS", G_FS },
	{ "__GFP_ZERO", G_ZERO },
	{ "__GFP_RECLAIM", G_RECLAIM },
	{ "__GFP_DIRECT_RECLAIM", G_DIRECT_RECLAIM },
	{ "__GFP_KSWAPD_RECLAIM", G_KSWAPD_RECLAIM },
	{ "__GFP_WRITE", 0x1000u },
	{ "__GFP_NOWARN", 0x2000u },
	{ "__GFP_RETRY_MAYFAIL", 0x4000u },
	{ "__GFP_NOFAIL", 0x8000u },
	{ "__GFP_NORETRY", 0x10000u },
	{ "__GFP_MEMALLOC", 0x20000u },
	{ "__GFP_COMP", 0x40000u },
	{ "__GFP_NOMEMALLOC", 0x80000u },
	{ "__GFP_HARDWALL", G_HARDWALL },
	{ "__GFP_THISNODE", 0x200000u },
	{ "__GFP_ACCOUNT", G_ACCOUNT },
	{ "__GFP_ZEROTAGS", 0x800000u },
};

#define NNAMES (sizeof(names) / sizeof(names[0]))
#define MAX_NAME 32

int vm_gfp_parse(const char *text, uint32_t *flags, struct vm_error *err)
{
	uint32_t f = 0;
	const char *p = text;

	for (;;) {
		char word[MAX_NAME + 1];
		size_t n = 0;
		unsigned i;

		while (*p == ' ')
			p++;
		while (*p && *p != '|' && *p != ' ') {
			if (n == MAX_NAME)
				return vm_fail(err, VM_EINVAL,
					       "gfp: flag name too long");
			word[n++] = *p++;
		}
		word[n] = '\0';
		while (*p == ' ')
			p++;
		for (i = 0; i < NNAMES; i++)
			if (strcmp(word, names[i].name) == 0)
				break;
		if (i == NNAMES)
			return vm_fail(err, VM_EINVAL,
				       "gfp: unknown flag '%.40s' (use names of "
				       "include/linux/gfp.h such as GFP_KERNEL, "
				       "GFP_ATOMIC, GFP_DMA, __GFP_ZERO)",
				       word);
		f |= names[i].value;
		if (*p == '\0')
			break;
		if (*p != '|')
			return vm_fail(err, VM_EINVAL,
				       "gfp: flags are joined with '|', not "
				       "'%c'", *p);
		p++;
	}
	*flags = f;
	return 0;
}

char *vm_gfp_format(uint32_t flags, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < NNAMES && flags; i++) {
		if ((flags & names[i].value) != names[i].value)
			continue;
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0,
					 "%s%s", used ? "|" : "", names[i].name);
		flags &= ~names[i].value;
	}
	if (flags)
		snprintf(buf + used, used < len ? len - used : 0, "%s%#x",
			 used ? "|" : "", flags);
	else if (used == 0)
		snprintf(buf, len, "0x0");
	return buf;
}

int vm_gfp_zone_bad(uint32_t flags)
{
	uint32_t z = flags & (VM_GFP_DMA | VM_GFP_HIGHMEM | VM_GFP_DMA32);

	/* GFP_ZONE_BAD: more than one of DMA, DMA32, HIGHMEM. */
	return z && (z & (z - 1));
}

unsigned vm_gfp_zonelist(uint32_t flags, const struct vm_layout *l,
			 enum vm_zone_id zones[VM_ZONE_COUNT])
{
	int top;
	unsigned n = 0;

	if (flags & VM_GFP_DMA)
		top = VM_ZONE_DMA;
	else if (flags & VM_GFP_DMA32)
		top = l->arch->is64 ? VM_ZONE_DMA32 : VM_ZONE_NORMAL;
	else if (flags & VM_GFP_HIGHMEM)
		top = VM_ZONE_HIGHMEM;
	else
		top = VM_ZONE_NORMAL;
	for (int z = top; z >= 0; z--)
		if (vm_layout_zone_populated(l, (enum vm_zone_id)z))
			zones[n++] = (enum vm_zone_id)z;
	return n;
}
