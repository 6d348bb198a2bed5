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

// A sleep on a worker's thread wakes this often to ask whether the worker is being
// terminated: no futex sleep is interrupted by worker.terminate(), which waits until this
// thread returns to JavaScript. The main thread sleeps in one piece (its environment stops
// only when it calls process.exit() itself).
constexpr double kStopLookMs = 50;

// True on a thread other than the process's first (a worker's): its sleeps are cut into
// kStopLookMs pieces, each followed by StopRequested().
bool OnWorkerThread();

// True once this thread's environment is going away (env.h's CanRunJs() is false): a worker
// terminated, or calling process.exit(). Only on the environment's own thread.
bool StopRequested(napi_env env);

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
