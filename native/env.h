// What the addon keeps for each JavaScript thread (the main thread, each worker): made at
// module init, freed when Node tears that thread's environment down.
#pragma once

#include <napi.h>

#include "lifetime.h"

namespace mman {

struct FutexEnv;
void DestroyFutexEnv(FutexEnv* futex);  // futex.cc

struct AddonEnv {
  explicit AddonEnv(napi_env env) : lifetime(env) {}
  ~AddonEnv() { DestroyFutexEnv(futex); }  // waits first: they borrow spans
  Lifetime lifetime;
  FutexEnv* futex = nullptr;  // made on first waitAsync
};

AddonEnv* AddonEnvOf(napi_env env);

}  // namespace mman
