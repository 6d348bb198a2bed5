// The N-API entry points that make and reshape mappings (mapping.cc), and the checks every
// entry point on a mapping shares. The region's life itself is lifetime.h's.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "lifetime.h"

namespace mman {

// Throws a TypeError unless `value` is a handle made by map().
Region* UnwrapRegion(Napi::Env env, const Napi::Value& value);

// Whole-region checks shared by the syscall wrappers: the region is open, and
// [offset, offset + length) is page-aligned at its start and inside it. Throws otherwise.
uint8_t* RegionRange(Napi::Env env, Region* region, const Napi::Value& offset,
                     const Napi::Value& length, size_t* lengthOut);

// A call that changes what the kernel keeps per memory area (protection, advice, locks, names,
// a MAP_FIXED mapping over part of it) on less than the whole mapping splits its area, and
// each split takes one more of vm.max_map_count: it asks limits.h first, as a new mapping
// does. True if it may go ahead.
bool MaySplit(const Region* region, const uint8_t* addr, size_t length);

// The pages [addr, addr + length) of the region have protection `prot` now (mprotect, or a
// MAP_FIXED mapping over them): the region's own record when that is all of it, and the
// fault table's, whose messages name the protection and whose zero pages take it.
void NoteProtection(Region* region, const uint8_t* addr, size_t length, int prot);

// The Lifetime of the calling thread (the main thread or a worker).
Lifetime* LifetimeOf(napi_env env);

size_t PageSize();

// Faults in every page of [addr, addr + length) through process_vm_readv (memory.cc): what
// populate() does where the kernel lacks MADV_POPULATE_*. 0, or -EFAULT at a page that cannot
// be read (past the end of a truncated file).
int PopulateByTouch(uint8_t* addr, size_t length);

void InitMapping(Napi::Env env, Napi::Object exports);

}  // namespace mman
