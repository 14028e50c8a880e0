/*
 * gfp.h - GFP flags: names, values, and the zones they allow.
 *
 * Values are those of include/linux/gfp.h in Linux 5.x-6.8 (before the
 * 6.9 renumbering), so that GFP_KERNEL prints as 0xcc0 as in the kernel's
 * own "gfp: 0xcc0 (GFP_KERNEL)" messages. Requests name flags as strings
 * joined with '|' ("GFP_KERNEL|__GFP_ZERO").
 *
 * The zone a request may use comes from the zone modifiers alone
 * (GFP_ZONE_TABLE/GFP_ZONE_BAD of gfp.h): __GFP_DMA -> ZONE_DMA,
 * __GFP_DMA32 -> ZONE_DMA32 (ZONE_NORMAL where 32-bit has no DMA32),
 * __GFP_HIGHMEM -> ZONE_HIGHMEM, nothing -> ZONE_NORMAL; a request falls
 * back to lower zones (SPEC 1.3). Other flags are accepted and change
 * nothing in the model: no reclaim, watermarks or zeroing are simulated.
 */
#ifndef VM_GFP_H
#define VM_GFP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "layout.h"

#define VM_GFP_DMA 0x01u
#define VM_GFP_HIGHMEM 0x02u
#define VM_GFP_DMA32 0x04u
#define VM_GFP_MOVABLE 0x08u
#define VM_GFP_ZONEMASK 0x0fu
#define VM_GFP_KERNEL 0xcc0u
#define VM_GFP_HIGHUSER 0x100cc2u

/*
 * Parses "NAME|NAME|..." (names of gfp.h, spaces around '|' allowed) into
 * flags. Fails with VM_EINVAL naming the unknown flag.
 */
int vm_gfp_parse(const char *text, uint32_t *flags, struct vm_error *err);

/*
 * Writes flags as names joined by '|' into buf (composite names first, as
 * the kernel's %pGg does); returns buf.
 */
char *vm_gfp_format(uint32_t flags, char *buf, size_t len);

/* Whether the zone modifiers form a GFP_ZONE_BAD combination. */
int vm_gfp_zone_bad(uint32_t flags);

/*
 * The zones to try, in order, for flags on this layout: the highest zone
 * the flags allow, then each lower one that is populated. Returns the count.
 */
unsigned vm_gfp_zonelist(uint32_t flags, const struct vm_layout *l,
			 enum vm_zone_id zones[VM_ZONE_COUNT]);

#endif
