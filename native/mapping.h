// One mapped region's lifetime: the handle JavaScript holds, the ArrayBuffers made over
// it, the operations in flight on the threadpool, and the munmap when the last lets go.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mman {

struct BufferRecord;

// The one native record of a mapping. Every entry point consults it, so nothing is
// unmapped twice and an address the kernel has handed to someone else is never touched.
struct Region {
  enum class State {
    kMapped,    // the caller's pages are at [base, base + size)
    kReserved,  // pages released; a PROT_NONE placeholder keeps the range ours
    kReleased,  // munmap done: the range may belong to anyone now
  };
  uint8_t* base = nullptr;
  size_t size = 0;  // a multiple of the page size
  State state = State::kMapped;
  uint32_t holds = 0;      // live ArrayBuffers + operations in flight: they keep the range
  uint32_t inFlight = 0;   // threadpool operations reading [base, base + size)
  bool handleAlive = true; // the JS handle keeps this struct (not the range) alive
  int guardSlot = -1;      // the truncation guard's slot, when guarded
  std::vector<BufferRecord*> buffers;
};

// Throws a TypeError unless `value` is a handle made by map().
Region* UnwrapRegion(Napi::Env env, const Napi::Value& value);

// Whole-region checks shared by the syscall wrappers: [offset, offset + length) must be
// page-aligned at its start and inside the region. Throws RangeError otherwise.
uint8_t* RegionRange(Napi::Env env, Region* region, const Napi::Value& offset,
                     const Napi::Value& length, size_t* lengthOut);

// A hold keeps the range reserved (a placeholder at least) after unmap(); the last
// Release of an unmapped region munmaps its placeholder.
void Hold(Region* region);
void Release(Region* region);

size_t PageSize();

void InitMapping(Napi::Env env, Napi::Object exports);

}  // namespace mman
