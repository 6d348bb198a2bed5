// mmap, munmap and mremap, and the ArrayBuffers over the result. The protocol is the one
// DESIGN.md measured: detach before munmap; a PROT_NONE placeholder while any buffer may
// still point into the range; munmap when the last holder lets go.
#include "mapping.h"

#include "guard.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>

namespace mman {

namespace {

// Tags the Externals this addon makes, so a forged or foreign handle is refused.
const napi_type_tag kRegionTag = {0x6d6d616e5f726567ULL, 0x696f6e5f68616e64ULL};

// One ArrayBuffer made over a region. Owned by the ArrayBuffer's finalizer.
}  // namespace

struct BufferRecord {
  Region* region = nullptr;
  napi_ref ref = nullptr;      // weak: tells whether the buffer is still ours to detach
  void* data = nullptr;        // where it starts: names a kept buffer when it is passed back
  bool detachedByUs = false;   // we detached it; its finalizer has not run yet
  bool creating = true;        // napi_create_external_arraybuffer has not returned
  bool finalized = false;      // the finalizer ran while creating (creation failed)
};

// Ranges this addon holds in the kernel (mapped or reserved), process-wide: every worker's.
std::atomic<int64_t> liveRegions{0};
std::atomic<int64_t> liveBytes{0};

// Whatever the range becomes next, the guard no longer covers it.
void Unguard(Region* region) {
  if (region->guardSlot < 0) return;
  GuardUnregister(region->guardSlot);
  region->guardSlot = -1;
}

void Released(Region* region) {
  Unguard(region);
  region->state = Region::State::kReleased;
  liveRegions.fetch_sub(1, std::memory_order_relaxed);
  liveBytes.fetch_sub(static_cast<int64_t>(region->size), std::memory_order_relaxed);
}

size_t PageSize() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

void Hold(Region* region) { ++region->holds; }

// Frees what nothing holds any more: the placeholder of an unmapped region once no buffer or
// operation can reach it; a mapping still mapped once its handle is gone too; then the struct.
static void Settle(Region* region) {
  if (region->holds != 0) return;
  if (region->state == Region::State::kReserved ||
      (region->state == Region::State::kMapped && !region->handleAlive)) {
    munmap(region->base, region->size);
    Released(region);
  }
  if (!region->handleAlive) delete region;
}

void Release(Region* region) {
  --region->holds;
  Settle(region);
}

namespace {

void FinalizeHandle(napi_env, void* data, void*) {
  auto* region = static_cast<Region*>(data);
  region->handleAlive = false;
  Settle(region);
}

void FinalizeBuffer(napi_env env, void*, void* hint) {
  auto* record = static_cast<BufferRecord*>(hint);
  if (record->creating) {  // creation failed and Node finalized at once: the creator cleans up
    record->finalized = true;
    return;
  }
  Region* region = record->region;
  auto& list = region->buffers;
  list.erase(std::remove(list.begin(), list.end(), record), list.end());
  if (record->ref != nullptr) napi_delete_reference(env, record->ref);
  delete record;
  Release(region);
}

// A non-negative integer that fits a size_t, as passed by the TypeScript layer.
bool ReadSize(Napi::Env env, const Napi::Value& value, const char* name, size_t* out) {
  if (!value.IsNumber()) {
    Napi::TypeError::New(env, std::string("native: ") + name + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) {
    Napi::RangeError::New(env, std::string("native: ") + name + " must be a safe integer >= 0")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<size_t>(d);
  return true;
}

Napi::Value Errno(Napi::Env env, int err) { return Napi::Number::New(env, -err); }

// The buffer a record stands for, if it is still attached and ours to detach: a kept
// buffer is the one the caller passes back (`kept`), any other is found through its weak
// reference. nullptr when it is gone, or detached by someone else: it may have been
// transferred (transfer(), a worker) and may outlive the mapping.
napi_value Reachable(Napi::Env env, BufferRecord* record, napi_value kept) {
  napi_value value = nullptr;
  if (record->ref != nullptr) {
    napi_get_reference_value(env, record->ref, &value);
  } else if (kept != nullptr) {
    bool isArrayBuffer = false;
    napi_is_arraybuffer(env, kept, &isArrayBuffer);
    if (isArrayBuffer) value = kept;
  }
  if (value == nullptr) return nullptr;
  void* data = nullptr;
  napi_get_arraybuffer_info(env, value, &data, nullptr);  // nullptr once detached
  return data == record->data && data != nullptr ? value : nullptr;
}

bool AllAccounted(Napi::Env env, Region* region, napi_value kept) {
  for (BufferRecord* record : region->buffers)
    if (!record->detachedByUs && Reachable(env, record, kept) == nullptr) return false;
  return true;
}

// Detaches every buffer we can still reach. Returns true when no buffer can outlive this call.
bool DetachBuffers(Napi::Env env, Region* region, napi_value kept) {
  bool accounted = true;
  for (BufferRecord* record : region->buffers) {
    if (record->detachedByUs) continue;
    napi_value value = Reachable(env, record, kept);
    if (value == nullptr) {
      accounted = false;
      continue;
    }
    napi_detach_arraybuffer(env, value);
    record->detachedByUs = true;
  }
  return accounted;
}

// The optional ArrayBuffer argument a caller keeps and passes back to unmap()/remap().
napi_value KeptArg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsArrayBuffer() ? static_cast<napi_value>(info[i]) : nullptr;
}

// map(length, prot, flags, fd, offset, hint?) -> handle | -errno
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length, offset;
  if (!ReadSize(env, info[0], "length", &length)) return env.Undefined();
  if (!ReadSize(env, info[4], "offset", &offset)) return env.Undefined();
  int prot = info[1].As<Napi::Number>().Int32Value();
  int flags = info[2].As<Napi::Number>().Int32Value();
  int fd = info[3].As<Napi::Number>().Int32Value();
  void* hint = nullptr;
  if (info.Length() > 5 && info[5].IsBigInt()) {
    bool lossless = true;
    hint = reinterpret_cast<void*>(info[5].As<Napi::BigInt>().Uint64Value(&lossless));
  }
  if ((flags & MAP_FIXED) != 0) {  // the TypeScript layer must route MAP_FIXED through Fixed()
    Napi::TypeError::New(env, "native: MAP_FIXED is not accepted by map()")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  void* addr = mmap(hint, length, prot, flags, fd, static_cast<off_t>(offset));
  if (addr == MAP_FAILED) return Errno(env, errno);
  auto* region = new Region();
  region->base = static_cast<uint8_t*>(addr);
  region->size = (length + PageSize() - 1) / PageSize() * PageSize();
  liveRegions.fetch_add(1, std::memory_order_relaxed);
  liveBytes.fetch_add(static_cast<int64_t>(region->size), std::memory_order_relaxed);
  napi_value handle;
  if (napi_create_external(env, region, FinalizeHandle, nullptr, &handle) != napi_ok) {
    munmap(addr, region->size);
    Released(region);
    delete region;
    NAPI_THROW(Napi::Error::New(env, "native: cannot create a mapping handle"),
               env.Undefined());
  }
  napi_type_tag_object(env, handle, &kRegionTag);
  return Napi::Value(env, handle);
}

// buffer(handle, offset, length, kept) -> ArrayBuffer over [base + offset, + length).
// kept: the caller holds the buffer as long as it is attached and passes it back to
// unmap()/remap(), so no weak reference is needed to find it (the common, fast case).
Napi::Value Buffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  size_t offset, length;
  if (!ReadSize(env, info[1], "offset", &offset) || !ReadSize(env, info[2], "length", &length))
    return env.Undefined();
  if (region->state != Region::State::kMapped || offset > region->size ||
      length > region->size - offset) {
    NAPI_THROW(Napi::RangeError::New(env, "native: buffer outside the mapping"), env.Undefined());
  }
  auto* record = new BufferRecord();
  record->region = region;
  record->data = region->base + offset;
  bool kept = info.Length() > 3 && info[3].ToBoolean().Value();
  Hold(region);
  napi_value ab = nullptr;
  napi_status status = napi_create_external_arraybuffer(env, region->base + offset, length,
                                                        FinalizeBuffer, record, &ab);
  record->creating = false;
  if (status != napi_ok) {
    // Some Node versions finalize at once when creation fails; either way, only we clean up.
    delete record;
    Release(region);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) {
      Napi::RangeError::New(env, "native: cannot create an ArrayBuffer of this length")
          .ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }
  if (record->finalized) {  // created, yet already finalized: never seen, but do not leak
    delete record;
    Release(region);
    NAPI_THROW(Napi::Error::New(env, "native: ArrayBuffer finalized during creation"),
               env.Undefined());
  }
  if (!kept) napi_create_reference(env, ab, 0, &record->ref);
  region->buffers.push_back(record);
  return Napi::Value(env, ab);
}

// unmap(handle, kept?) -> 0 | -errno. Idempotent.
Napi::Value Unmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  if (region->state != Region::State::kMapped) return Napi::Number::New(env, 0);
  bool accounted = DetachBuffers(env, region, KeptArg(info, 1));
  if (accounted && region->inFlight == 0) {
    Released(region);  // cleared before the syscall: never twice
    if (munmap(region->base, region->size) != 0) return Errno(env, errno);
    return Napi::Number::New(env, 0);
  }
  // A buffer may outlive this call: release the pages, keep the range ours until the
  // last holder lets go, so a stray access faults instead of reading someone else's data.
  void* placeholder = mmap(region->base, region->size, PROT_NONE,
                           MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (placeholder == MAP_FAILED) return Errno(env, errno);
  Unguard(region);
  region->state = Region::State::kReserved;
  return Napi::Number::New(env, 0);
}

// remap(handle, newSize, flags, kept?) -> 0 | -errno | 1 (a buffer may have been transferred away)
Napi::Value Remap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  size_t newSize;
  if (!ReadSize(env, info[1], "newSize", &newSize)) return env.Undefined();
  int flags = info[2].As<Napi::Number>().Int32Value();
  if (region->state != Region::State::kMapped || newSize == 0 || newSize % PageSize() != 0 ||
      (flags & ~MREMAP_MAYMOVE) != 0) {
    NAPI_THROW(Napi::RangeError::New(env, "native: bad remap"), env.Undefined());
  }
  // Buffers over the old range must all be ours to detach: a moved or shrunk range would
  // leave a transferred one pointing at memory that is no longer this mapping's.
  napi_value kept = KeptArg(info, 3);
  if (!AllAccounted(env, region, kept)) return Napi::Number::New(env, 1);
  if (region->inFlight != 0) return Errno(env, EBUSY);
  void* addr = mremap(region->base, region->size, newSize, flags);
  if (addr == MAP_FAILED) return Errno(env, errno);
  DetachBuffers(env, region, kept);
  liveBytes.fetch_add(static_cast<int64_t>(newSize) - static_cast<int64_t>(region->size),
                      std::memory_order_relaxed);
  region->base = static_cast<uint8_t*>(addr);
  region->size = newSize;
  if (region->guardSlot >= 0) GuardMove(region->guardSlot, reinterpret_cast<uintptr_t>(addr), newSize);
  return Napi::Number::New(env, 0);
}

// fixed(handle, offset, length, prot, flags, fd, fileOffset) -> 0 | -errno
// MAP_FIXED, confined to pages this mapping already owns.
Napi::Value Fixed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  size_t length, fileOffset;
  uint8_t* addr = RegionRange(env, region, info[1], info[2], &length);
  if (addr == nullptr || !ReadSize(env, info[6], "fileOffset", &fileOffset))
    return env.Undefined();
  int prot = info[3].As<Napi::Number>().Int32Value();
  int flags = info[4].As<Napi::Number>().Int32Value();
  int fd = info[5].As<Napi::Number>().Int32Value();
  void* got = mmap(addr, length, prot, flags | MAP_FIXED, fd, static_cast<off_t>(fileOffset));
  if (got == MAP_FAILED) return Errno(env, errno);
  return Napi::Number::New(env, 0);
}

// address(handle) -> bigint
Napi::Value Address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(region->base)));
}

// stats() -> [ranges held, bytes held]: what this process has mapped through the addon.
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(liveRegions.load())));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(liveBytes.load())));
  return out;
}

}  // namespace

Region* UnwrapRegion(Napi::Env env, const Napi::Value& value) {
  bool tagged = false;
  if (value.IsExternal()) napi_check_object_type_tag(env, value, &kRegionTag, &tagged);
  if (!tagged) {
    Napi::TypeError::New(env, "native: not a mapping handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  return value.As<Napi::External<Region>>().Data();
}

uint8_t* RegionRange(Napi::Env env, Region* region, const Napi::Value& offsetValue,
                     const Napi::Value& lengthValue, size_t* lengthOut) {
  size_t offset, length;
  if (!ReadSize(env, offsetValue, "offset", &offset) ||
      !ReadSize(env, lengthValue, "length", &length))
    return nullptr;
  if (region->state != Region::State::kMapped) {
    Napi::Error::New(env, "native: mapping is closed").ThrowAsJavaScriptException();
    return nullptr;
  }
  if (offset % PageSize() != 0 || offset > region->size || length > region->size - offset) {
    Napi::RangeError::New(env, "native: range outside the mapping or unaligned")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  *lengthOut = length;
  return region->base + offset;
}

void InitMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("map", Napi::Function::New(env, Map, "map"));
  exports.Set("buffer", Napi::Function::New(env, Buffer, "buffer"));
  exports.Set("unmap", Napi::Function::New(env, Unmap, "unmap"));
  exports.Set("remap", Napi::Function::New(env, Remap, "remap"));
  exports.Set("fixed", Napi::Function::New(env, Fixed, "fixed"));
  exports.Set("address", Napi::Function::New(env, Address, "address"));
  exports.Set("stats", Napi::Function::New(env, Stats, "stats"));
}

}  // namespace mman
