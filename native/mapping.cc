// mmap and mremap, and the ArrayBuffers over the result: the kernel side of a Mapping. What
// happens to a range afterwards (closing, retiring, releasing) is lifetime.cc's, drawn in
// docs/ARCHITECTURE.md.
#include "answers.h"
#include "mapping.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "env.h"
#include "guard.h"
#include "limits.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

namespace mman {

namespace {

// Tags the Externals this addon makes, so a forged or foreign handle is refused.
const napi_type_tag kRegionTag = {0x6d6d616e5f726567ULL, 0x696f6e5f68616e64ULL};

// A non-negative integer that fits a size_t, as passed by the TypeScript layer.
bool ReadSize(Napi::Env env, const Napi::Value& value, const char* name, size_t* out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) {  // one call: the type is checked there
    ArgTypeError(env, std::string("native: ") + name + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) {
    ArgRangeError(env, std::string("native: ") + name + " must be a safe integer >= 0")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<size_t>(d);
  return true;
}

// The optional ArrayBuffer argument a caller keeps and passes back to unmap()/remap().
napi_value KeptArg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsArrayBuffer() ? static_cast<napi_value>(info[i]) : nullptr;
}

// The descriptor of a file region's file, if it has one: its own (keepFile), or the one its
// fault table entry keeps (guarded). Still theirs: duplicate it to keep it.
int FileOf(const Region* region) {
  if (region->fileFd >= 0) return region->fileFd;
  if (region->guarded && region->span != nullptr && region->span->faultSlot >= 0)
    return GuardFileOf(region->span->faultSlot);
  return -1;
}

// Resizing where the kernel may move or cut the pages: nothing but the region pins them.
int RemapAlone(Region* region, size_t newSize, int flags) {
  Span* span = region->span;
  void* addr = mremap(span->base, span->size, newSize, flags);
  if (addr == MAP_FAILED) return -errno;
  ResizeSpan(span, addr, newSize);
  return 0;
}

// Growing a MAP_SHARED region that must move while its pages are pinned: a second mapping
// of the same pages (mremap with old_size 0); the first stays for whatever pins it.
int MoveShared(Region* region, size_t newSize) {
  Span* old = region->span;
  void* addr = mremap(old->base, 0, newSize, MREMAP_MAYMOVE);
  if (addr == MAP_FAILED) return -errno;
  AdoptSpan(region, addr, newSize);
  RetireSpan(old, true);
  return 0;
}

// Puts back into `old` (a range whose pages were just moved to `moved`) the contents they
// had, page by page where they differ: an anonymous page that stayed zero, or a file page
// never written, reads the same from the kernel again and costs nothing.
void RestoreContents(uint8_t* old, const uint8_t* moved, size_t size, int prot) {
  size_t page = PageSize();
  mprotect(old, size, PROT_READ | PROT_WRITE);
  if ((prot & PROT_READ) == 0) mprotect(const_cast<uint8_t*>(moved), size, prot | PROT_READ);
  for (size_t off = 0; off < size; off += page)
    if (memcmp(old + off, moved + off, page) != 0) memcpy(old + off, moved + off, page);
  mprotect(old, size, prot);
  if ((prot & PROT_READ) == 0) mprotect(const_cast<uint8_t*>(moved), size, prot);
}

bool AllZero(const uint8_t* page, size_t size) {
  static const uint8_t zeros[4096] = {};
  for (size_t off = 0; off < size; off += sizeof zeros)
    if (memcmp(page + off, zeros, std::min(sizeof zeros, size - off)) != 0) return false;
  return true;
}

// Growing a private anonymous region that must move while its pages are pinned: the pages
// belong to it alone, so the new region gets a copy (of the pages that are not zero) and
// the old range stays exactly as it is for whatever pins it, writers included. The new
// mapping is made with the same flags and protection; advice given to the old one
// (madvise) is not carried over, nor an mlock().
int CopyAnonymous(Region* region, size_t newSize) {
  Span* old = region->span;
  int prot = VmaAt(reinterpret_cast<uintptr_t>(old->base), nullptr, nullptr);
  if (prot < 0) return -EFAULT;
  int keep = MAP_NORESERVE | MAP_HUGETLB | MAP_LOCKED | (0x3f << MAP_HUGE_SHIFT);
  void* addr = mmap(nullptr, newSize, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | (region->flags & keep), -1, 0);
  if (addr == MAP_FAILED) return -errno;
  if ((prot & PROT_READ) == 0) mprotect(old->base, old->size, prot | PROT_READ);
  size_t page = PageSize();
  auto* to = static_cast<uint8_t*>(addr);
  for (size_t off = 0; off < old->size; off += page)
    if (!AllZero(old->base + off, page)) memcpy(to + off, old->base + off, page);
  if ((prot & PROT_READ) == 0) mprotect(old->base, old->size, prot);
  if (prot != (PROT_READ | PROT_WRITE)) mprotect(addr, newSize, prot);
  AdoptSpan(region, addr, newSize);
  RetireSpan(old, true);  // pinned by more than the region: it stays
  return 0;
}

// Growing a private file region ('copy') that must move while its pages are pinned: the file
// is mapped again at the new size (from the descriptor the region keeps), and the pages this
// mapping wrote (those that differ from the file) are copied in. The old range is not
// touched, so whatever reads or writes it meanwhile sees the mapping's own pages.
int RemapPrivateFile(Region* region, size_t newSize, int fileFd) {
  Span* old = region->span;
  uint8_t* oldBase = old->base;
  size_t oldSize = old->size;
  int prot = VmaAt(reinterpret_cast<uintptr_t>(oldBase), nullptr, nullptr);
  if (prot < 0) return -EFAULT;
  int keep = MAP_NORESERVE | MAP_LOCKED;
  void* addr = mmap(nullptr, newSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | (region->flags & keep),
                    fileFd, static_cast<off_t>(region->fileOffset));
  if (addr == MAP_FAILED) return -errno;
  Span* span = AdoptSpan(region, addr, newSize);  // guarded, if the region is: the compare
  RetireSpan(old, true);  // below reads the file's pages. The old range stays for its pins.
  if ((prot & PROT_READ) == 0) mprotect(oldBase, oldSize, prot | PROT_READ);
  size_t page = PageSize();
  for (size_t off = 0; off < oldSize; off += page)
    if (memcmp(oldBase + off, span->base + off, page) != 0)
      memcpy(span->base + off, oldBase + off, page);
  if ((prot & PROT_READ) == 0) mprotect(oldBase, oldSize, prot);
  if (prot != (PROT_READ | PROT_WRITE)) mprotect(span->base, newSize, prot);
  return 0;
}

// The same without the file's descriptor (the process had none to spare when it mapped): the
// pages are moved (MREMAP_DONTUNMAP keeps the old range mapped, empty) and copied back where
// they differ. Between the two, something reading the old range on another thread sees the
// file's bytes: the fallback only. Returns answers::kMovedNotGrown when the region moved but
// could not grow (ENOMEM), with its buffers retired all the same.
int MovePrivate(Region* region, size_t newSize) {
  Span* old = region->span;
  uint8_t* oldBase = old->base;
  size_t oldSize = old->size;
  int prot = VmaAt(reinterpret_cast<uintptr_t>(oldBase), nullptr, nullptr);
  if (prot < 0) return -EFAULT;
  // The raw syscall: glibc's wrapper passes no new address without MREMAP_FIXED, and the
  // kernel refuses MREMAP_DONTUNMAP with a stray one.
  void* moved = reinterpret_cast<void*>(
      syscall(SYS_mremap, oldBase, oldSize, oldSize, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, nullptr));
  if (moved == MAP_FAILED) return -errno;
  Span* span = AdoptSpan(region, moved, oldSize);  // guarded, if the region is: the copy below
  RetireSpan(old, true);  // reads the moved pages. The old range stays for its pins.
  RestoreContents(oldBase, span->base, oldSize, prot);
  // Nothing points into the moved pages yet: they may move again to grow.
  return RemapAlone(region, newSize, MREMAP_MAYMOVE) == 0 ? 0 : answers::kMovedNotGrown;
}

// map(length, prot, flags, fd, offset, hint: bigint | undefined, label: string,
//     options: kKeepFile | kGuard | kHint | kLabel, granule) -> handle | -errno |
//     answers::kMapLimit | answers::kGuardFull
// kKeepFile: the region keeps a duplicate of `fd` while open (share(), growFile, a private
// resize that moves); kGuard: its SIGBUS faults are survived (guard.h), which keeps one too.
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length, offset;
  if (!ReadSize(env, info[0], "length", &length)) return env.Undefined();
  if (!ReadSize(env, info[4], "offset", &offset)) return env.Undefined();
  int prot = info[1].As<Napi::Number>().Int32Value();
  int flags = info[2].As<Napi::Number>().Int32Value();
  int fd = info[3].As<Napi::Number>().Int32Value();
  // Every argument is passed; what options does not flag is not looked at (each look is a call).
  int options = info[7].As<Napi::Number>().Int32Value();
  void* hint = nullptr;
  if ((options & kHint) != 0) {
    bool lossless = true;
    uint64_t address = info[5].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless || address % PageSize() != 0) {  // the TypeScript layer checks the range
      NAPI_THROW(ArgRangeError(env, "native: address outside the address space"), env.Undefined());
    }
    hint = reinterpret_cast<void*>(static_cast<uintptr_t>(address));
  }
  std::string label =
      (options & kLabel) != 0 ? info[6].As<Napi::String>().Utf8Value() : std::string();
  size_t granule;  // the page size, or a huge page's for MAP_HUGETLB and hugetlbfs files
  if (!ReadSize(env, info[8], "granule", &granule)) return env.Undefined();
  if (granule < PageSize() || (granule & (granule - 1)) != 0) {
    NAPI_THROW(ArgRangeError(env, "native: granule must be a power of two >= the page size"),
               env.Undefined());
  }
  if ((flags & MAP_FIXED) != 0) {  // the TypeScript layer must route MAP_FIXED through Fixed()
    ArgTypeError(env, "native: MAP_FIXED is not accepted by map()").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool file = (flags & MAP_ANONYMOUS) == 0 && fd >= 0;
  bool guarded = file && (options & kGuard) != 0;
  if (!MayMapAnother()) return Napi::Number::New(env, answers::kMapLimit);
  RegionSetup setup;
  setup.flags = flags;
  setup.prot = prot;
  setup.granule = granule;
  setup.fileOffset = file ? offset : 0;
  setup.guarded = guarded;
  setup.label = std::move(label);
  if (guarded) setup.sourceFd = fd;
  if (file && (options & kKeepFile) != 0) {
    setup.fileFd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (setup.fileFd < 0) return Errno(env, errno);
  }
  void* addr = mmap(hint, length, prot, flags, fd, static_cast<off_t>(offset));
  if (addr == MAP_FAILED) {
    int err = errno;
    if (setup.fileFd >= 0) close(setup.fileFd);
    return Errno(env, err);
  }
  size_t size = (length + granule - 1) / granule * granule;  // what the kernel mapped
  Region* region = OpenRegion(LifetimeOf(env), addr, size, std::move(setup));
  if (region == nullptr)  // unmapped, its descriptor closed
    return Napi::Number::New(env, errno == ENOSPC ? answers::kGuardFull : -errno);
  napi_value handle;
  if (napi_create_external(env, region, nullptr, nullptr, &handle) != napi_ok) {
    region->open = false;
    ForgetFile(region);
    RetireSpan(region->span, false);  // its only pin: released
    delete region;
    NAPI_THROW(Napi::Error::New(env, "native: cannot create a mapping handle"), env.Undefined());
  }
  if (!AttachHandle(env, region, handle)) {  // released, its descriptor closed
    NAPI_THROW(Napi::Error::New(env, "native: cannot watch a mapping handle"), env.Undefined());
  }
  napi_type_tag_object(env, handle, &kRegionTag);
  return Napi::Value(env, handle);
}

// buffer(handle, offset, length, kept) -> ArrayBuffer over [base + offset, + length).
// The caller stores the handle on it (src/native.ts lend()). kept: the caller holds the
// buffer and passes it back to unmap()/remap(), so it needs no weak reference.
Napi::Value Buffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  size_t offset, length;
  if (!ReadSize(env, info[1], "offset", &offset) || !ReadSize(env, info[2], "length", &length))
    return env.Undefined();
  if (!region->open || offset > region->span->size || length > region->span->size - offset) {
    NAPI_THROW(ArgRangeError(env, "native: buffer outside the mapping"), env.Undefined());
  }
  bool kept = info.Length() > 3 && info[3].ToBoolean().Value();
  napi_value buffer = LendBuffer(env, region, offset, length, kept);
  return buffer == nullptr ? env.Undefined() : Napi::Value(env, buffer);
}

// unmap(handle, kept?, detach?) -> 0. Idempotent. The range goes back to the kernel once
// nothing can reach it (lifetime.cc); munmap of a range we mapped cannot fail.
Napi::Value Unmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  bool detach = info.Length() > 2 && info[2].ToBoolean().Value();
  CloseRegion(env, region, KeptArg(info, 1), detach);
  return Napi::Number::New(env, 0);
}

// retireBuffers(handle, kept?): the buffers made so far stop being the region's (as after a
// resize): the next `buffer` is a new one. For a read-only mapping made writable, whose
// buffers were immutable.
Napi::Value Retire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  if (!region->open) NAPI_THROW(ClosedError(env), env.Undefined());
  RetireBuffers(env, region, KeptArg(info, 1));
  return env.Undefined();
}

// noteTransfer(buffer): called by the transfer() of a buffer we made, before it moves the store.
Napi::Value NoteTransfer(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsArrayBuffer()) NoteStoreMoving(info.Env(), info[0]);
  return info.Env().Undefined();
}

// remap(handle, newSize, flags, kept?) -> 0 | -errno (nothing changed) |
// answers::kMovedNotGrown (moved, could not grow: ENOMEM; the old buffers retired all the same)
Napi::Value Remap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  size_t newSize;
  if (!ReadSize(env, info[1], "newSize", &newSize)) return env.Undefined();
  int flags = info[2].As<Napi::Number>().Int32Value();
  if (!region->open || newSize == 0 || newSize % PageSize() != 0 ||
      (flags & ~MREMAP_MAYMOVE) != 0) {
    NAPI_THROW(ArgRangeError(env, "native: bad remap"), env.Undefined());
  }
  Span* span = region->span;
  int rc;
  if (newSize == span->size) {
    rc = 0;
  } else if (span->pins == 1) {
    rc = RemapAlone(region, newSize, flags);
  } else if (newSize < span->size) {
    // Shrinking never moves, and the tail stays mapped for whatever pins it.
    SplitTail(region, newSize);
    rc = 0;
  } else if (mremap(span->base, span->size, newSize, 0) != MAP_FAILED) {
    ResizeSpan(span, span->base, newSize);  // grown in place: every address stays valid
    rc = 0;
  } else if (errno != ENOMEM || (flags & MREMAP_MAYMOVE) == 0) {
    rc = -errno;
  } else {
    if ((region->flags & MAP_TYPE) != MAP_PRIVATE)
      rc = MoveShared(region, newSize);
    else if ((region->flags & MAP_ANONYMOUS) != 0)
      rc = CopyAnonymous(region, newSize);
    else
      rc = FileOf(region) >= 0 ? RemapPrivateFile(region, newSize, FileOf(region))
                               : MovePrivate(region, newSize);
  }
  // The old buffers keep the old extent, which stays mapped while they can reach it.
  if (rc >= 0) RetireBuffers(env, region, KeptArg(info, 3));
  return Napi::Number::New(env, rc);
}

// regionFile(handle) -> [fd, fileOffset] | -EBADF: the descriptor the region keeps (still the
// region's: duplicate it at once) and the file offset of its first page.
Napi::Value RegionFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  if (!region->open) NAPI_THROW(ClosedError(env), env.Undefined());
  int fileFd = FileOf(region);
  if (fileFd < 0) return Napi::Number::New(env, -EBADF);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fileFd));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(region->fileOffset)));
  return out;
}

// fixed(handle, offset, length, prot, flags, fd, fileOffset) -> 0 | -errno
// MAP_FIXED, confined to pages this mapping already owns.
Napi::Value Fixed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  size_t length, fileOffset;
  uint8_t* addr = RegionRange(env, region, info[1], info[2], &length);
  if (addr == nullptr || !ReadSize(env, info[6], "fileOffset", &fileOffset)) return env.Undefined();
  int prot = info[3].As<Napi::Number>().Int32Value();
  int flags = info[4].As<Napi::Number>().Int32Value();
  int fd = info[5].As<Napi::Number>().Int32Value();
  if (!MaySplit(region, addr, length)) return Napi::Number::New(env, answers::kMapLimit);
  void* got = mmap(addr, length, prot, flags | MAP_FIXED, fd, static_cast<off_t>(fileOffset));
  if (got == MAP_FAILED) return Errno(env, errno);
  NoteProtection(region, addr, length, prot);
  return Napi::Number::New(env, 0);
}

// address(handle) -> bigint
Napi::Value Address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  if (!region->open) NAPI_THROW(ClosedError(env), env.Undefined());
  return Napi::BigInt::New(env,
                           static_cast<uint64_t>(reinterpret_cast<uintptr_t>(region->span->base)));
}

// stats() -> [ranges held, bytes held, of which retired: ranges, bytes], after releasing what
// this thread's collector has freed.
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Sweep(LifetimeOf(env));
  SpanCounts counts = CountSpans();
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(counts.regions)));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(counts.bytes)));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(counts.retiredRegions)));
  out.Set(3u, Napi::Number::New(env, static_cast<double>(counts.retiredBytes)));
  return out;
}

// mapLimit() -> [areas, max, reserve]: what the last count of the process's memory areas saw
// (limits.h), for the message of a refused map().
Napi::Value MapLimitInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapLimit limit = LastMapLimit();
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(limit.areas)));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(limit.max)));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(limit.reserve)));
  return out;
}

}  // namespace

size_t PageSize() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

Lifetime* LifetimeOf(napi_env env) {
  return &AddonEnvOf(env)->lifetime;
}

Region* UnwrapRegion(Napi::Env env, const Napi::Value& value) {
  bool tagged = false;
  if (value.IsExternal()) napi_check_object_type_tag(env, value, &kRegionTag, &tagged);
  if (!tagged) {
    ArgTypeError(env, "native: not a mapping handle").ThrowAsJavaScriptException();
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
  if (!region->open) {
    ClosedError(env).ThrowAsJavaScriptException();
    return nullptr;
  }
  size_t size = region->span->size;
  if (offset % PageSize() != 0 || offset > size || length > size - offset) {
    ArgRangeError(env, "native: range outside the mapping or unaligned")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  *lengthOut = length;
  return region->span->base + offset;
}

bool MaySplit(const Region* region, const uint8_t* addr, size_t length) {
  const Span* span = region->span;
  return (addr == span->base && length == span->size) || MayMapAnother();
}

void NoteProtection(Region* region, const uint8_t* addr, size_t length, int prot) {
  Span* span = region->span;
  bool whole = addr == span->base && length == span->size;
  if (whole) region->prot = prot;
  if (span->faultSlot >= 0) GuardProtect(span->faultSlot, prot, whole);
}

void InitMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("map", Napi::Function::New(env, Map, "map"));
  exports.Set("buffer", Napi::Function::New(env, Buffer, "buffer"));
  exports.Set("unmap", Napi::Function::New(env, Unmap, "unmap"));
  exports.Set("remap", Napi::Function::New(env, Remap, "remap"));
  exports.Set("regionFile", Napi::Function::New(env, RegionFile, "regionFile"));
  exports.Set("noteTransfer", Napi::Function::New(env, NoteTransfer, "noteTransfer"));
  exports.Set("retireBuffers", Napi::Function::New(env, Retire, "retireBuffers"));
  exports.Set("fixed", Napi::Function::New(env, Fixed, "fixed"));
  exports.Set("address", Napi::Function::New(env, Address, "address"));
  exports.Set("stats", Napi::Function::New(env, Stats, "stats"));
  exports.Set("mapLimit", Napi::Function::New(env, MapLimitInfo, "mapLimit"));
}

}  // namespace mman
