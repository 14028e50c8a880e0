/* arch.c - the architecture tables; see arch.h. */
#include <string.h>

#include "arch.h"

#define GiB (1ULL << 30)

static const struct vm_arch arches[VM_ARCH_COUNT] = {
	[VM_ARCH_I386] = {
		/* pgtable-2level_types.h: PGDIR_SHIFT 22, 1024 entries. */
		.id = VM_ARCH_I386, .name = "i386", .levels = 2,
		.level = {
			{ "PGD", 22, 1024, true, true },
			{ "PTE", 12, 1024, false, true },
		},
		.entry_size = 4, .nx = false, .is64 = false, .va_bits = 32,
		.addr_mask = 0xfffff000ULL,
		.page_offset = 0xc0000000ULL, .task_size = 0xc0000000ULL,
		.struct_page = 32, .max_memory = 4 * GiB,
	},
	[VM_ARCH_I386_PAE] = {
		/*
		 * pgtable-3level_types.h: PGDIR_SHIFT 30 with 4 entries (the
		 * PDPT, where only P means something), PMD_SHIFT 21.
		 */
		.id = VM_ARCH_I386_PAE, .name = "i386-pae", .levels = 3,
		.level = {
			{ "PGD", 30, 4, false, false },
			{ "PMD", 21, 512, true, true },
			{ "PTE", 12, 512, false, true },
		},
		.entry_size = 8, .nx = true, .is64 = false, .va_bits = 32,
		.addr_mask = 0x000ffffffffff000ULL,
		.page_offset = 0xc0000000ULL, .task_size = 0xc0000000ULL,
		.struct_page = 32, .max_memory = 64 * GiB,
	},
	[VM_ARCH_X86_64] = {
		.id = VM_ARCH_X86_64, .name = "x86_64", .levels = 4,
		.level = {
			{ "PGD", 39, 512, false, true },
			{ "PUD", 30, 512, true, true },
			{ "PMD", 21, 512, true, true },
			{ "PTE", 12, 512, false, true },
		},
		.entry_size = 8, .nx = true, .is64 = true, .va_bits = 48,
		.addr_mask = 0x000ffffffffff000ULL,
		.page_offset = 0xffff888000000000ULL,
		.task_size = 0x00007ffffffff000ULL,
		.struct_page = 64, .max_memory = 1ULL << 44,
	},
	[VM_ARCH_X86_64_LA57] = {
		.id = VM_ARCH_X86_64_LA57, .name = "x86_64-la57", .levels = 5,
		.level = {
			{ "PGD", 48, 512, false, true },
			{ "P4D", 39, 512, false, true },
			{ "PUD", 30, 512, true, true },
			{ "PMD", 21, 512, true, true },
			{ "PTE", 12, 512, false, true },
		},
		.entry_size = 8, .nx = true, .is64 = true, .va_bits = 57,
		.addr_mask = 0x000ffffffffff000ULL,
		.page_offset = 0xff11000000000000ULL,
		.task_size = 0x00fffffffffff000ULL,
		.struct_page = 64, .max_memory = 1ULL << 44,
	},
};

const struct vm_arch *vm_arch_get(enum vm_arch_id id)
{
	return &arches[id];
}

const struct vm_arch *vm_arch_by_name(const char *name)
{
	for (int i = 0; i < VM_ARCH_COUNT; i++)
		if (strcmp(arches[i].name, name) == 0)
			return &arches[i];
	return NULL;
}

bool vm_arch_canonical(const struct vm_arch *a, uint64_t va)
{
	uint64_t top;

	if (!a->is64)
		return true;
	/* Bits 63..va_bits-1 must all equal bit va_bits-1. */
	top = va >> (a->va_bits - 1);
	return top == 0 || top == (UINT64_MAX >> (a->va_bits - 1));
}

uint64_t vm_arch_va_limit(const struct vm_arch *a)
{
	return a->is64 ? 0 : 1ULL << 32;
}
