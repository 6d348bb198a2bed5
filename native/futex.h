// What futex.cc's calls share with mutex.cc: the futex syscall, deadlines on CLOCK_MONOTONIC,
// the spin's pause, and the checked (handle, ArrayBuffer, byteOffset) word argument.
#pragma once

#include <time.h>

#include <cstdint>

#include <napi.h>

#include "lifetime.h"

namespace mman {

// A compiler barrier (x86-64: no PAUSE, which costs a pause-loop exit under a hypervisor);
// YIELD on arm64.
void CpuRelax();

long Futex(void* addr, int op, uint32_t val, const timespec* ts, uint32_t val3);

// CLOCK_MONOTONIC now + timeoutMs, for FUTEX_WAIT_BITSET (absolute).
timespec Deadline(double timeoutMs);
bool Passed(const timespec& deadline);
bool Before(const timespec& a, const timespec& b);

// The (handle, ab, byteOffset, ..., waitersOffset) every call on a word starts with.
struct WordArgs {
  Region* region = nullptr;
  int32_t* word = nullptr;
  int32_t* waiters = nullptr;
};

// The waiter-count word is not there: a Mutex call, which has none.
constexpr size_t kNoWaitersArg = SIZE_MAX;

// Reads the word from info[0..2] and, unless waitersArg is kNoWaitersArg, the waiter count from
// info[waitersArg]: a byte offset, or -1 for none (any other value is ERR_INVALID_ARG_TYPE).
// On failure returns false with *early set to what to return: undefined (JS exception
// pending) or answers::kMisaligned for a misaligned word, which the TypeScript layer reports.
bool ReadWordArgs(const Napi::CallbackInfo& info, size_t waitersArg, WordArgs* out,
                  Napi::Value* early);

}  // namespace mman
