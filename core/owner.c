/* owner.c - names of owners; see owner.h. */
#include "owner.h"

const char *vm_owner_kind_name(enum vm_owner_kind kind)
{
	static const char *const names[VM_OWNER_KIND_COUNT] = {
		[VM_OWNER_FREE] = "free",
		[VM_OWNER_RESERVED] = "reserved",
		[VM_OWNER_KERNEL_IMAGE] = "kernel_image",
		[VM_OWNER_MEM_MAP] = "mem_map",
		[VM_OWNER_PAGE_TABLE] = "page_table",
		[VM_OWNER_SLAB] = "slab",
		[VM_OWNER_KMALLOC_LARGE] = "kmalloc_large",
		[VM_OWNER_VMALLOC] = "vmalloc",
		[VM_OWNER_PAGE_ALLOC] = "page_alloc",
		[VM_OWNER_USER] = "user",
		[VM_OWNER_KERNEL_STACK] = "kernel_stack",
		[VM_OWNER_BOOT] = "boot",
	};
	return kind < VM_OWNER_KIND_COUNT ? names[kind] : "unknown";
}

const char *vm_kernel_section_name(enum vm_kernel_section s)
{
	static const char *const names[] = { "text", "rodata", "data" };
	return s <= VM_KSECT_DATA ? names[s] : "unknown";
}
