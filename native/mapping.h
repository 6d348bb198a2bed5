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

// The Lifetime of the calling thread (the main thread or a worker).
Lifetime* LifetimeOf(napi_env env);

size_t PageSize();

// Faults in every page of [addr, addr + length) through process_vm_readv (memory.cc): what
// populate() does where the kernel lacks MADV_POPULATE_*. 0, or -EFAULT at a page that cannot
// be read (past the end of a truncated file).
int PopulateByTouch(uint8_t* addr, size_t length);

void InitMapping(Napi::Env env, Napi::Object exports);

}  // namespace mman
