// What the addon keeps for each JavaScript thread (the main thread, each worker): made at
// module init, freed when Node tears that thread's environment down.
#pragma once

#include <napi.h>
#include <unistd.h>

#include <unordered_set>

#include "lifetime.h"

namespace mman {

struct FutexEnv;
void DestroyFutexEnv(FutexEnv* futex);  // futex.cc
struct JobsEnv;
void DestroyJobsEnv(JobsEnv* jobs);  // jobs.cc

struct AddonEnv {
  explicit AddonEnv(napi_env env) : lifetime(env) {}
  ~AddonEnv() {  // waits and jobs first: they borrow spans
    DestroyFutexEnv(futex);
    DestroyJobsEnv(jobs);
    for (int fd : ownedFds) close(fd);
  }
  Lifetime lifetime;
  FutexEnv* futex = nullptr;  // made on first waitAsync
  JobsEnv* jobs = nullptr;    // made on the first job (jobs.h)
  // Every descriptor the addon hands to JavaScript on this thread (opened, created, received,
  // taken from another thread) and those SharedMemory objects took over: closed with the thread
  // unless fdClose() closed it first. A worker terminated between the moment a descriptor
  // reaches JavaScript and the code that would close it leaks nothing.
  std::unordered_set<int> ownedFds;
};

AddonEnv* AddonEnvOf(napi_env env);

// False once this thread's environment is going away (a worker terminated or exiting, the
// process exiting): Node still completes the threadpool work queued before, but JavaScript
// can no longer run, and every call that would (settling a promise, setting a property)
// fails. A completion that finds this must only let go of what it holds.
bool CanRunJs(napi_env env);

// Drops the JavaScript exception a failed Node-API call left pending, if any (addon.cc).
void ClearPendingException(napi_env env);

}  // namespace mman
