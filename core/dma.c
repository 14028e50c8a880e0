/* dma.c - DMA suitability of a buffer; see dma.h. */
#include "dma.h"
#include "machine_int.h"
#include "pagetable.h"

const char *vm_dma_reason_name(unsigned bit)
{
	static const char *const n[VM_DMA_NREASONS] = {
		"vmalloc_address", "not_contiguous", "above_dma_mask",
		"unmapped", "user_address", "kernel_image", "kmap_address",
		"crosses_allocations", "not_allocated", "kernel_stack",
	};
	return bit < VM_DMA_NREASONS ? n[bit] : "";
}

/* The kernel image: its text mapping on 64-bit, and its direct-map alias. */
static bool in_image(const struct vm_layout *l, uint64_t va, uint64_t end)
{
	uint64_t alias = l->page_offset + VM_KIMAGE_START;

	if (va < alias + (VM_KIMAGE_END - VM_KIMAGE_START) && end > alias)
		return true;
	if (l->arch->is64) {
		uint64_t img = l->kernel_map + VM_KIMAGE_START;

		return va < img + (VM_KIMAGE_END - VM_KIMAGE_START) && end > img;
	}
	return false;
}

/* Reasons that come from what the allocation behind the buffer is. */
static uint32_t allocation_reasons(const struct vm_machine *m,
				   const struct vm_dma_req *req,
				   const struct vm_region *r, uint64_t first_pa,
				   bool mapped)
{
	const struct vm_layout *l = &m->layout;
	uint64_t end = req->va + req->length;

	if (r->kind == VM_REGION_VMALLOC) {
		int i = vmalloc_find(m, req->va);
		uint32_t why = VM_DMA_VMALLOC_ADDRESS;

		if (i >= 0) {
			const struct vm_area *a = &m->areas[i];

			if (a->kind == VM_AREA_STACK)
				why |= VM_DMA_KERNEL_STACK;
			if (end > a->va + ((uint64_t)a->npages << VM_PAGE_SHIFT))
				why |= VM_DMA_CROSSES_ALLOCATIONS;
		}
		return why;
	}
	if (r->kind == VM_REGION_PKMAP)
		return VM_DMA_KMAP_ADDRESS;
	if (r->kind == VM_REGION_USER)
		return VM_DMA_USER_ADDRESS;
	if (in_image(l, req->va, end))
		return VM_DMA_KERNEL_IMAGE;
	if (r->kind == VM_REGION_DIRECT_MAP && mapped) {
		uint64_t start, size;
		struct vm_owner o;

		if (!slab_object_at(m, first_pa, &start, &size)) {
			o = buddy_owner(m->buddy, first_pa >> VM_PAGE_SHIFT);
			return o.kind == VM_OWNER_KERNEL_STACK
				       ? VM_DMA_KERNEL_STACK
				       : VM_DMA_NOT_ALLOCATED;
		}
		if (first_pa + req->length > start + size)
			return VM_DMA_CROSSES_ALLOCATIONS;
	}
	return 0;
}

int vm_dma_check(const struct vm_machine *m, const struct vm_dma_req *req,
		 struct vm_dma_result *out, vm_dma_segment_fn fn, void *ctx,
		 struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	const struct vm_arch *a = l->arch;
	uint64_t mask, top, va, end, seg_pa = 0, seg_len = 0, first_pa = 0;
	const struct vm_region *r;
	bool unmapped = false, any = false;

	if (req->length == 0 || req->length > VM_DMA_MAX_LENGTH)
		return vm_fail(err, VM_ERANGE,
			       "length: must be 1 byte to 1 GiB");
	if (req->mask_bits < 1 || req->mask_bits > 64)
		return vm_fail(err, VM_ERANGE,
			       "dma_mask_bits: must be 1 to 64 (24 is ISA, 32 "
			       "the default)");
	if ((!a->is64 && (req->va > 0xffffffffULL ||
			  req->length - 1 > 0xffffffffULL - req->va)) ||
	    req->length - 1 > UINT64_MAX - req->va)
		return vm_fail(err, VM_ERANGE,
			       "[va, va + length) runs past the end of the "
			       "address space");
	r = vm_layout_region(l, req->va);
	if (req->has_pid) {
		top = m_top_table(m, req->pid);
		if (top == VM_NONE64)
			return vm_fail(err, VM_ENOENT, "no process with pid %u",
				       req->pid);
	} else if (r->kind == VM_REGION_USER) {
		return vm_fail(err, VM_EINVAL,
			       "va: %#llx is a user address: give the pid whose "
			       "pages it names", (unsigned long long)req->va);
	} else {
		top = m->swapper_pfn;
	}
	mask = req->mask_bits == 64 ? UINT64_MAX
				    : (1ULL << req->mask_bits) - 1;

	out->reasons = 0;
	out->nsegments = 0;
	end = req->va + req->length; /* may wrap to 0 at the very top */
	for (va = req->va; va - req->va < req->length;) {
		struct vm_walk w;
		uint64_t next, len;

		if (!vm_arch_canonical(a, va)) {
			unmapped = true;
			break;
		}
		pt_walk(m, top, va, &w);
		if (w.leaf < 0) {
			/* Skip to the end of the page (or hole) not mapped. */
			uint64_t span = vm_level_span(
				a, w.step[w.nsteps - 1].level);

			next = (va | (span - 1)) + 1;
			unmapped = true;
		} else {
			next = (va | (w.page_size - 1)) + 1;
		}
		len = next - va;
		if (next == 0 || len > req->length - (va - req->va))
			len = req->length - (va - req->va);
		if (w.leaf >= 0) {
			if (!any)
				first_pa = w.pa;
			if (any && seg_len && seg_pa + seg_len == w.pa) {
				seg_len += len;
			} else {
				if (seg_len) {
					if (fn)
						fn(ctx, seg_pa, seg_len);
					out->nsegments++;
				}
				seg_pa = w.pa;
				seg_len = len;
			}
			if (w.pa + len - 1 > mask)
				out->reasons |= VM_DMA_ABOVE_DMA_MASK;
			any = true;
		}
		va += len;
		if (va == end)
			break;
	}
	if (seg_len) {
		if (fn)
			fn(ctx, seg_pa, seg_len);
		out->nsegments++;
	}
	if (unmapped)
		out->reasons |= VM_DMA_UNMAPPED;
	if (out->nsegments > 1)
		out->reasons |= VM_DMA_NOT_CONTIGUOUS;
	out->reasons |= allocation_reasons(m, req, r, first_pa, any);
	out->sg_ok = !(out->reasons & (VM_DMA_UNMAPPED | VM_DMA_ABOVE_DMA_MASK));
	out->single_ok = out->reasons == 0;
	return 0;
}
