// Module init: the functions of each concern, the page size, and the kernel's constants
// as this build's headers define them (the TypeScript enums are checked against these).
#include <napi.h>
#include <sys/mman.h>
#include <linux/mman.h>

#include "answers.h"
#include "env.h"
#include "guard.h"
#include "mapping.h"

namespace mman {

void InitMemory(Napi::Env env, Napi::Object exports);
void InitShared(Napi::Env env, Napi::Object exports);
void InitFutex(Napi::Env env, Napi::Object exports, Napi::Object tools);
void InitMutex(Napi::Env env, Napi::Object exports);
void InitTools(Napi::Env env, Napi::Object tools);

namespace {

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  MMAN_EXPORT_CONSTANT(c, PROT_NONE);
  MMAN_EXPORT_CONSTANT(c, PROT_READ);
  MMAN_EXPORT_CONSTANT(c, PROT_WRITE);
  MMAN_EXPORT_CONSTANT(c, PROT_EXEC);
  MMAN_EXPORT_CONSTANT(c, MAP_SHARED);
  MMAN_EXPORT_CONSTANT(c, MAP_PRIVATE);
  MMAN_EXPORT_CONSTANT(c, MAP_SHARED_VALIDATE);
  MMAN_EXPORT_CONSTANT(c, MAP_FIXED);
  MMAN_EXPORT_CONSTANT(c, MAP_FIXED_NOREPLACE);
  MMAN_EXPORT_CONSTANT(c, MAP_ANONYMOUS);
  MMAN_EXPORT_CONSTANT(c, MAP_NORESERVE);
  MMAN_EXPORT_CONSTANT(c, MAP_POPULATE);
  MMAN_EXPORT_CONSTANT(c, MAP_NONBLOCK);
  MMAN_EXPORT_CONSTANT(c, MAP_LOCKED);
  MMAN_EXPORT_CONSTANT(c, MAP_STACK);
  MMAN_EXPORT_CONSTANT(c, MAP_HUGETLB);
  MMAN_EXPORT_CONSTANT(c, MAP_SYNC);
  MMAN_EXPORT_CONSTANT(c, MAP_HUGE_SHIFT);
  MMAN_EXPORT_CONSTANT(c, MAP_HUGE_2MB);
  MMAN_EXPORT_CONSTANT(c, MAP_HUGE_1GB);
  MMAN_EXPORT_CONSTANT(c, MADV_NORMAL);
  MMAN_EXPORT_CONSTANT(c, MADV_RANDOM);
  MMAN_EXPORT_CONSTANT(c, MADV_SEQUENTIAL);
  MMAN_EXPORT_CONSTANT(c, MADV_WILLNEED);
  MMAN_EXPORT_CONSTANT(c, MADV_DONTNEED);
  MMAN_EXPORT_CONSTANT(c, MADV_FREE);
  MMAN_EXPORT_CONSTANT(c, MADV_REMOVE);
  MMAN_EXPORT_CONSTANT(c, MADV_DONTFORK);
  MMAN_EXPORT_CONSTANT(c, MADV_DOFORK);
  MMAN_EXPORT_CONSTANT(c, MADV_MERGEABLE);
  MMAN_EXPORT_CONSTANT(c, MADV_UNMERGEABLE);
  MMAN_EXPORT_CONSTANT(c, MADV_HUGEPAGE);
  MMAN_EXPORT_CONSTANT(c, MADV_NOHUGEPAGE);
  MMAN_EXPORT_CONSTANT(c, MADV_DONTDUMP);
  MMAN_EXPORT_CONSTANT(c, MADV_DODUMP);
  MMAN_EXPORT_CONSTANT(c, MADV_WIPEONFORK);
  MMAN_EXPORT_CONSTANT(c, MADV_KEEPONFORK);
  MMAN_EXPORT_CONSTANT(c, MADV_COLD);
  MMAN_EXPORT_CONSTANT(c, MADV_PAGEOUT);
  MMAN_EXPORT_CONSTANT(c, MADV_POPULATE_READ);
  MMAN_EXPORT_CONSTANT(c, MADV_POPULATE_WRITE);
  MMAN_EXPORT_CONSTANT(c, MADV_DONTNEED_LOCKED);
  MMAN_EXPORT_CONSTANT(c, MADV_COLLAPSE);
#ifdef MADV_GUARD_INSTALL  // Linux 6.13 headers: older ones leave the values unchecked
  MMAN_EXPORT_CONSTANT(c, MADV_GUARD_INSTALL);
  MMAN_EXPORT_CONSTANT(c, MADV_GUARD_REMOVE);
#endif
  MMAN_EXPORT_CONSTANT(c, MS_ASYNC);
  MMAN_EXPORT_CONSTANT(c, MS_INVALIDATE);
  MMAN_EXPORT_CONSTANT(c, MS_SYNC);
  MMAN_EXPORT_CONSTANT(c, MREMAP_MAYMOVE);
  MMAN_EXPORT_CONSTANT(c, MREMAP_FIXED);
  MMAN_EXPORT_CONSTANT(c, MREMAP_DONTUNMAP);
  MMAN_EXPORT_CONSTANT(c, MLOCK_ONFAULT);
#if defined(MAP_32BIT)
  MMAN_EXPORT_CONSTANT(c, MAP_32BIT);
#endif
  return c;
}

void DeleteAddonEnv(napi_env, void* data, void*) {
  delete static_cast<AddonEnv*>(data);
}

// 0 if this runtime lets an ArrayBuffer over memory it did not allocate exist, else the
// Node-API status that refused it (napi_no_external_buffers_allowed: Electron 21 and later,
// whose V8 runs with its memory cage). Found out once, here.
int ExternalBuffersStatus(napi_env env) {
  static uint8_t probe[1];
  napi_value buffer;
  napi_status status =
      napi_create_external_arraybuffer(env, probe, sizeof probe, nullptr, nullptr, &buffer);
  if (status != napi_ok) {
    ClearPendingException(env);
  }
  return static_cast<int>(status);
}

// Whether structuredClone(buffer, { transfer: [buffer] }) moves an external buffer's memory
// into the copy (Deno) rather than copying it (Node 20) or refusing (Node 22+, Bun): the
// copy then reaches the pages without any transfer() of ours having been told.
bool StoresMoveUnseen(napi_env env) {
  static uint8_t probe[1];
  napi_value buffer, global, clone, options, list, copy;
  bool detached = false;
  if (napi_create_external_arraybuffer(env, probe, sizeof probe, nullptr, nullptr, &buffer) !=
          napi_ok ||
      napi_get_global(env, &global) != napi_ok ||
      napi_get_named_property(env, global, "structuredClone", &clone) != napi_ok) {
    ClearPendingException(env);
    return false;
  }
  napi_valuetype type;
  if (napi_typeof(env, clone, &type) != napi_ok || type != napi_function) return false;
  napi_create_object(env, &options);
  napi_create_array_with_length(env, 1, &list);
  napi_set_element(env, list, 0, buffer);
  napi_set_named_property(env, options, "transfer", list);
  napi_value args[2] = {buffer, options};
  if (napi_call_function(env, global, clone, 2, args, &copy) == napi_ok)
    napi_is_detached_arraybuffer(env, buffer, &detached);
  ClearPendingException(env);  // DataCloneError: refused
  return detached;
}

}  // namespace

void InitAnswers(Napi::Env env, Napi::Object exports) {
  Napi::Object a = Napi::Object::New(env);
  a.Set("WAIT_OK", answers::kWaitOk);
  a.Set("WAIT_NOT_EQUAL", answers::kWaitNotEqual);
  a.Set("WAIT_TIMED_OUT", answers::kWaitTimedOut);
  a.Set("WAIT_CANCELLED", answers::kWaitCancelled);
  a.Set("MISALIGNED", answers::kMisaligned);
  a.Set("MOVED_NOT_GROWN", answers::kMovedNotGrown);
  a.Set("MAP_LIMIT", answers::kMapLimit);
  a.Set("GUARD_FULL", answers::kGuardFull);
  a.Set("GUARD_SLOTS", kGuardSlots);
  a.Set("MAP_KEEP_FILE", kKeepFile);
  a.Set("MAP_GUARD", kGuard);
  a.Set("MAP_HINT", kHint);
  a.Set("MAP_LABEL", kLabel);
  a.Set("LOCK_ACQUIRED", answers::kLockAcquired);
  a.Set("LOCK_OWNER_DIED", answers::kLockOwnerDied);
  a.Set("LOCK_BUSY", answers::kLockBusy);
  a.Set("LOCK_TIMED_OUT", answers::kLockTimedOut);
  a.Set("STOPPING", answers::kStopping);
  exports.Set("answers", a);
}

bool CanRunJs(napi_env env) {
  // napi_strict_equals runs no JavaScript, but Node checks first, as for any call that could,
  // whether the environment may still run it.
  napi_value undefined;
  bool same = false;
  if (napi_get_undefined(env, &undefined) != napi_ok) return false;
  if (napi_strict_equals(env, undefined, undefined, &same) == napi_ok) return true;
  ClearPendingException(env);  // the probe leaves no exception behind, if it ever set one
  return false;
}

void ClearPendingException(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  napi_value ignored;
  if (pending) napi_get_and_clear_last_exception(env, &ignored);
}

AddonEnv* AddonEnvOf(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<AddonEnv*>(data);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Freed when this thread's environment is torn down, after Node ran every finalizer.
  auto* addon = new AddonEnv(env);
  napi_set_instance_data(env, addon, DeleteAddonEnv, nullptr);
  // Runs before Node finalizes what this thread still holds (a hook added later runs
  // earlier), so that nothing is re-armed while everything is being let go.
  napi_add_env_cleanup_hook(
      env, [](void* data) { static_cast<AddonEnv*>(data)->lifetime.tearingDown = true; }, addon);
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(PageSize())));
  exports.Set("constants", Constants(env));
  InitAnswers(env, exports);
  exports.Set("externalBuffers", Napi::Number::New(env, ExternalBuffersStatus(env)));
  addon->lifetime.storesMoveUnseen = StoresMoveUnseen(env);
  exports.Set("storesMoveUnseen", Napi::Boolean::New(env, addon->lifetime.storesMoveUnseen));
  InitMapping(env, exports);
  InitMemory(env, exports);
  InitShared(env, exports);
  Napi::Object tools = Napi::Object::New(env);  // hooks for the tools and the tests
  exports.Set("tools", tools);
  InitFutex(env, exports, tools);
  InitMutex(env, exports);
  InitTools(env, tools);
  return exports;
}

}  // namespace mman

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return mman::Init(env, exports);
}

NODE_API_MODULE(mman, InitAddon)
