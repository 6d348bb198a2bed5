// The addon's side of the boundary with src/native.ts, in one vocabulary:
// - a call answers a value, or a negative errno when the kernel refused;
// - the few answers that are neither are named here, each out of reach of the call's values
//   and of the errno range (native.answers exports them, the
//   TypeScript layer reads them from there, and test/flags.test.ts checks them);
// - a misuse throws an error with a Node code. The TypeScript layer validates first, so only
//   a bug, or an argument whose getter acted in the middle of a call, gets one.
#pragma once

#include <errno.h>

#include <string>

#include <napi.h>

namespace mman {

namespace answers {
// wait(), and the callback of waitAsyncStart():
constexpr int kWaitOk = 0;        // woken, or the word had changed: an event
constexpr int kWaitNotEqual = 1;  // the word was not `expected` when the call looked
constexpr int kWaitTimedOut = 2;
constexpr int kWaitCancelled = 3;  // waitAsyncCancel() (waitAsync only)
// wait(), notify(), waitAsyncStart(): the word is not 4-byte aligned in memory. Below the
// errno range (-4095..-1, Linux's MAX_ERRNO), so that no count, id or errno is ever taken
// for it.
constexpr int kMisaligned = -4096;
// remap(): it moved to grow, then could not grow (ENOMEM); the old buffers were retired.
constexpr int kMovedNotGrown = 1;
// map(): refused before mmap, the process being within its reserve of vm.max_map_count
// (limits.h). Below the errno range, as kMisaligned.
constexpr int kMapLimit = -4097;
// map(): a guarded mapping found the fault table full (guard.h, kGuardSlots); nothing mapped.
constexpr int kGuardFull = -4098;
// mutexLock(), mutexTryLock() (mutex.cc); a misuse answers -EDEADLK or -EPERM:
constexpr int kLockAcquired = 0;
constexpr int kLockOwnerDied = 1;  // acquired; the holder before died holding it
constexpr int kLockBusy = 2;       // tryLock only
constexpr int kLockTimedOut = 3;
// wait(), mutexLock() on a worker's thread: the worker is being terminated (or exiting), so
// the call gave up sleeping. Below the errno range, as kMisaligned. JavaScript that is being
// terminated seldom runs far enough to see it.
constexpr int kStopping = -4099;
}  // namespace answers

// map()'s options, a bit set.
constexpr int kKeepFile = 1;  // the region keeps a duplicate of the file's descriptor while open
constexpr int kGuard = 2;     // its SIGBUS faults are survived (guard.h)
constexpr int kHint = 4;      // `hint` is an address (a bigint) to map at
constexpr int kLabel = 8;     // `label` names the mapping in fault messages

// -errno, for an errno the caller has (a positive number).
inline Napi::Value Errno(Napi::Env env, int err) {
  return Napi::Number::New(env, -err);
}

// 0, or -errno after a libc call that returned nonzero.
inline Napi::Value Result(Napi::Env env, int rc) {
  return Napi::Number::New(env, rc == 0 ? 0 : -errno);
}

inline Napi::Error WithCode(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  return error;
}

// An argument of the wrong type: TypeError, ERR_INVALID_ARG_TYPE.
inline Napi::Error ArgTypeError(Napi::Env env, const std::string& message) {
  return WithCode(Napi::TypeError::New(env, message), "ERR_INVALID_ARG_TYPE");
}

// An argument out of range: RangeError, ERR_OUT_OF_RANGE.
inline Napi::Error ArgRangeError(Napi::Env env, const std::string& message) {
  return WithCode(Napi::RangeError::New(env, message), "ERR_OUT_OF_RANGE");
}

// The mapping was unmapped (perhaps by a getter of this very call's arguments).
inline Napi::Error ClosedError(Napi::Env env) {
  return WithCode(Napi::Error::New(env, "The mapping has been unmapped"), "ERR_MAPPING_CLOSED");
}

// Sets `object[name] = name`'s value: the kernel's constants, as this build's headers have them.
#define MMAN_EXPORT_CONSTANT(object, name) \
  (object).Set(#name, Napi::Number::New((object).Env(), static_cast<double>(name)))

void InitAnswers(Napi::Env env, Napi::Object exports);

}  // namespace mman
