/*
 * buddy.h - physical frames: zones, the buddy allocator, and ownership.
 *
 * Orders 0..10 (MAX_PAGE_ORDER), per zone, with the exact policy of SPEC
 * 1.3: a request of order n takes the head of the smallest non-empty free
 * list of order >= n in the first zone of its zone list that has one;
 * splitting keeps the lower half and puts each upper half at the head of
 * its list; a free merges with its buddy (same order, same zone) while it
 * can and puts the result at the head of its list. At boot the free blocks
 * are queued lowest address first.
 *
 * Host memory follows use, not RAM: a block that has been touched since
 * boot has a record (keyed by its first frame); the order-10 blocks never
 * touched since boot are kept as "virgin runs", ranges that form the tail
 * of each zone's order-10 list in ascending order (nothing is ever added
 * behind them, and order-10 blocks never merge, so they only leave from the
 * front). Boot reservations are a short list of ranges.
 *
 * Invariants (buddy_check): every frame of RAM is in exactly one of a
 * reservation, an allocated block, a free block or a virgin run; free
 * blocks are aligned, inside their zone, on the list of their order, and
 * never have a free buddy of the same order; list counts match.
 */
#ifndef VM_BUDDY_H
#define VM_BUDDY_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hostmem.h"
#include "layout.h"
#include "owner.h"

#define VM_MAX_ORDER 10
#define VM_NR_ORDERS (VM_MAX_ORDER + 1)

struct vm_buddy;

/* Lifecycle. The layout is borrowed and must outlive the allocator. */
struct vm_buddy *buddy_create(const struct vm_layout *l,
			      struct vm_hostmem *hm);
void buddy_free_all(struct vm_buddy *b);

/*
 * Boot: mark [start, end) (frames) reserved for owner; then buddy_boot
 * queues every unreserved frame on the free lists.
 */
void buddy_reserve(struct vm_buddy *b, uint64_t start_pfn, uint64_t end_pfn,
		   struct vm_owner owner);
void buddy_boot(struct vm_buddy *b);

/*
 * Allocates a block of 2^order frames from the first zone of zones[] that
 * can serve it, owned by owner. Returns 0 and the first frame, or
 * VM_ENOMEM (nothing changes).
 */
int buddy_alloc(struct vm_buddy *b, unsigned order,
		const enum vm_zone_id *zones, unsigned nzones,
		const struct vm_owner *owner, uint64_t *pfn);

/*
 * Allocates order-0 pages from one zone only (the boot churn). Returns 0
 * or VM_ENOMEM.
 */
int buddy_alloc_in_zone(struct vm_buddy *b, enum vm_zone_id zone,
			const struct vm_owner *owner, uint64_t *pfn);

/*
 * Frees the allocated block that starts at pfn and has the given order.
 * The caller has checked that it is one (buddy_find).
 */
void buddy_free(struct vm_buddy *b, uint64_t pfn, unsigned order);

/*
 * Finds the allocated block containing pfn: returns true and its first
 * frame, order and owner; false for free or reserved frames.
 */
bool buddy_find(const struct vm_buddy *b, uint64_t pfn, uint64_t *head,
		unsigned *order, struct vm_owner *owner);

/* Changes the owner of the allocated block starting at head. */
void buddy_set_owner(struct vm_buddy *b, uint64_t head,
		     const struct vm_owner *owner);

/* The owner of any frame of RAM (free, reserved or allocated). */
struct vm_owner buddy_owner(const struct vm_buddy *b, uint64_t pfn);

/* Free blocks of each order and free pages, per zone (/proc/buddyinfo). */
struct vm_zone_info {
	uint64_t free_blocks[VM_NR_ORDERS];
	uint64_t free_pages;
};
void buddy_zone_info(const struct vm_buddy *b, enum vm_zone_id z,
		     struct vm_zone_info *info);

/* Frames allocated in total (reservations excluded). */
uint64_t buddy_allocated_pages(const struct vm_buddy *b);

/*
 * Walks frames [start_pfn, end_pfn) as ranges of one owner, in ascending
 * order, adjacent frames with the same owner merged (a user page's owner
 * continues when the next frame holds the next page). fn returns non-zero
 * to stop; that value is returned.
 */
typedef int (*vm_range_fn)(void *ctx, uint64_t start_pfn, uint64_t end_pfn,
			   const struct vm_owner *owner);
int buddy_ranges(const struct vm_buddy *b, uint64_t start_pfn,
		 uint64_t end_pfn, vm_range_fn fn, void *ctx);

/* Checks the invariants above; returns 0 or VM_ECORRUPT with a detail. */
int buddy_check(const struct vm_buddy *b, struct vm_error *err);

/* Test hook (testing.h): breaks a list count, or owns a frame twice. */
int buddy_test_corrupt(struct vm_buddy *b, int owned_twice);

/* Canonical encoding (state.h uses these; enc.h is the byte writer). */
struct vm_enc;
struct vm_dec;
void buddy_encode(const struct vm_buddy *b, struct vm_enc *e);
int buddy_decode(struct vm_buddy *b, struct vm_dec *d);

#endif
