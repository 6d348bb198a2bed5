// The calls that act on pages of a live mapping: mprotect, madvise, msync (inline and on
// the threadpool), populate (on the threadpool), mlock/mlock2/munlock, mincore and the
// anonymous-memory name (prctl). Each checks its range with
// RegionRange, calls the kernel once, and returns 0 or -errno.
#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>

#include "answers.h"
#include "guard.h"
#include "jobs.h"
#include "mapping.h"

namespace mman {

namespace {

int IntArg(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Number>().Int32Value();
}

// The (handle, offset, length) every call here starts with: the first byte of the checked
// range, or nullptr with a JS exception pending.
uint8_t* RangeArgs(const Napi::CallbackInfo& info, size_t* length, Region** regionOut = nullptr) {
  Region* region = UnwrapRegion(info.Env(), info[0]);
  if (region == nullptr) return nullptr;
  if (regionOut != nullptr) *regionOut = region;
  return RegionRange(info.Env(), region, info[1], info[2], length);
}

// protect(handle, offset, length, prot)
Napi::Value Protect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  Region* region = nullptr;
  uint8_t* addr = RangeArgs(info, &length, &region);
  if (addr == nullptr) return env.Undefined();
  int prot = IntArg(info, 3);
  if (!MaySplit(region, addr, length)) return Napi::Number::New(env, answers::kMapLimit);
  if (mprotect(addr, length, prot) != 0) return Errno(env, errno);
  NoteProtection(region, addr, length, prot);
  return Napi::Number::New(env, 0);
}

// advise(handle, offset, length, advice)
Napi::Value Advise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  Region* region = nullptr;
  uint8_t* addr = RangeArgs(info, &length, &region);
  if (addr == nullptr) return env.Undefined();
  if (!MaySplit(region, addr, length)) return Napi::Number::New(env, answers::kMapLimit);
  return Result(env, madvise(addr, length, IntArg(info, 3)));
}

// sync(handle, offset, length, flags)
Napi::Value Sync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  uint8_t* addr = RangeArgs(info, &length);
  if (addr == nullptr) return env.Undefined();
  return Result(env, msync(addr, length, IntArg(info, 3)));
}

// A call on a range of a region, on the threadpool (a PoolJob): `work` runs there and answers
// 0 or -errno, which the promise resolves with. It borrows the region's pages, so an unmap()
// while it runs leaves them mapped until it is done (and destroyed, on the JS thread).
template <typename Work>
class RangeJob : public PoolJob {
 public:
  RangeJob(Napi::Env env, const char* name, Region* region, Work work)
      : PoolJob(env, name), promise_(env), borrow_(region), work_(std::move(work)) {}
  Napi::Value Promise() const { return promise_.Value(); }

 protected:
  void Execute() override { result_ = work_(); }
  void Deliver(Napi::Env env) override { promise_.Resolve(env, Napi::Number::New(env, result_)); }
  void Abandon() override {}  // the borrow goes with the job

 private:
  JobPromise promise_;
  Borrow borrow_;
  Work work_;
  int result_ = 0;
};

template <typename Work>
Napi::Value QueueRangeJob(Napi::Env env, const char* name, Region* region, Work work) {
  auto* job = new RangeJob<Work>(env, name, region, std::move(work));
  Napi::Value promise = job->Promise();
  job->Queue();
  return promise;
}

// flush(handle, offset, length, flags) -> Promise<0 | -errno>
Napi::Value Flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  Region* region = nullptr;
  uint8_t* addr = RangeArgs(info, &length, &region);
  if (addr == nullptr) return env.Undefined();
  int flags = IntArg(info, 3);
  return QueueRangeJob(env, "mman.flush", region,
                       [=] { return msync(addr, length, flags) == 0 ? 0 : -errno; });
}

#ifndef MADV_POPULATE_READ  // Linux 5.14
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

// Faults in one byte of every page of [addr, addr + length) without touching it from this
// thread: process_vm_readv(2) on this very process reads through the kernel's fault path, so
// a page past the end of a truncated file gives EFAULT, where a load would raise SIGBUS.
// The fallback for kernels before MADV_POPULATE_READ; it makes the pages resident (the disk
// read is done) but leaves them mapped read-only, so a first write still takes a minor fault.
}  // namespace

int PopulateByTouch(uint8_t* addr, size_t length) {
  constexpr size_t kBatch = 512;  // below IOV_MAX (1024)
  size_t page = PageSize();
  char scratch[kBatch];
  iovec remote[kBatch];
  for (size_t off = 0; off < length;) {
    size_t n = 0;
    for (; n < kBatch && off < length; ++n, off += page) remote[n] = {addr + off, 1};
    iovec local = {scratch, n};
    ssize_t got = process_vm_readv(getpid(), &local, 1, remote, n, 0);
    if (got < 0) return -errno;
    if (static_cast<size_t>(got) < n) return -EFAULT;  // stopped at a page it could not read
  }
  return 0;
}

namespace {

// populate(handle, offset, length, write) -> Promise<0 | -errno>
Napi::Value Populate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  Region* region = nullptr;
  uint8_t* addr = RangeArgs(info, &length, &region);
  if (addr == nullptr) return env.Undefined();
  size_t ahead = 0;
  if ((region->flags & MAP_ANONYMOUS) == 0) {
    uint8_t* end = region->span->base + region->span->size;
    ahead = std::min(2 * length, static_cast<size_t>(end - addr));
  }
  bool write = info[3].ToBoolean().Value();
  // MADV_POPULATE_READ/WRITE over one bounded chunk, or the page touch above where the kernel
  // has neither (EINVAL). For a file, MADV_WILLNEED over the chunk and the next one first: the
  // kernel reads them ahead in large requests whatever the mapping's own advice (MADV_RANDOM
  // turns read-ahead off, and the populate alone would then read page by page), and the next
  // chunk is on its way while JavaScript queues it.
  return QueueRangeJob(env, "mman.populate", region, [=] {
    if (ahead != 0) madvise(addr, ahead, MADV_WILLNEED);  // advice: its failure changes nothing
    if (madvise(addr, length, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0) return 0;
    int rc = -errno;
    return rc == -EINVAL ? PopulateByTouch(addr, length) : rc;
  });
}

#ifndef PR_SET_VMA  // Linux 5.17
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

// name(handle, offset, length, name | null) -> 0 | -errno: names the anonymous memory of the
// range, shown as [anon:name] in /proc/<pid>/maps (prctl PR_SET_VMA_ANON_NAME); null removes it.
Napi::Value Name(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  Region* region = nullptr;
  uint8_t* addr = RangeArgs(info, &length, &region);
  if (addr == nullptr) return env.Undefined();
  if (!MaySplit(region, addr, length)) return Napi::Number::New(env, answers::kMapLimit);
  std::string name;
  bool named = info[3].IsString();
  if (named) name = info[3].As<Napi::String>().Utf8Value();
  return Result(
      env, prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, length, named ? name.c_str() : nullptr));
}

// lock(handle, offset, length, flags): mlock, or mlock2 when flags (MLOCK_ONFAULT) are given
Napi::Value Lock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  Region* region = nullptr;
  uint8_t* addr = RangeArgs(info, &length, &region);
  if (addr == nullptr) return env.Undefined();
  if (!MaySplit(region, addr, length)) return Napi::Number::New(env, answers::kMapLimit);
  unsigned flags = static_cast<unsigned>(IntArg(info, 3));
  // The raw syscalls: a sanitizer runtime replaces the libc wrappers with no-ops.
  return Result(env, static_cast<int>(flags == 0 ? syscall(SYS_mlock, addr, length)
                                                 : syscall(SYS_mlock2, addr, length, flags)));
}

// unlock(handle, offset, length)
Napi::Value Unlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  Region* region = nullptr;
  uint8_t* addr = RangeArgs(info, &length, &region);
  if (addr == nullptr) return env.Undefined();
  if (!MaySplit(region, addr, length)) return Napi::Number::New(env, answers::kMapLimit);
  return Result(env, static_cast<int>(syscall(SYS_munlock, addr, length)));
}

// residency(handle, offset, length, out: Uint8Array) — mincore straight into `out`
Napi::Value Residency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length;
  uint8_t* addr = RangeArgs(info, &length);
  if (addr == nullptr) return env.Undefined();
  if (!info[3].IsTypedArray() ||
      info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    NAPI_THROW(ArgTypeError(env, "native: out must be a Uint8Array"), env.Undefined());
  }
  auto out = info[3].As<Napi::Uint8Array>();
  size_t pages = (length + PageSize() - 1) / PageSize();
  if (out.ElementLength() < pages) {
    NAPI_THROW(ArgRangeError(env, "native: out is too short"), env.Undefined());
  }
  return Result(env, mincore(addr, length, out.Data()));
}

// guardFaults(handle) -> pages the SIGBUS guard replaced in the region's pages, of either
// kind: 0 on the fast path of every call on a guarded mapping.
Napi::Value Faults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  GuardCounts counts = region->open ? FaultCounts(region) : GuardCounts();
  return Napi::Number::New(env, static_cast<double>(counts.truncated) + counts.lost);
}

// guardReport(handle) -> [truncated, lost, lostFirst, lostEnd, lostErrno]: what the SIGBUS guard
// did for the region's pages since it was mapped (guard.h): pages past the end of the file,
// and pages inside it that could not be backed, with the file range those span and why.
Napi::Value Report(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  GuardCounts counts = region->open ? FaultCounts(region) : GuardCounts();
  Napi::Array out = Napi::Array::New(env, 5);
  out.Set(0u, Napi::Number::New(env, counts.truncated));
  out.Set(1u, Napi::Number::New(env, counts.lost));
  out.Set(2u, Napi::Number::New(env, counts.lost != 0 ? static_cast<double>(counts.lostFirst) : 0));
  out.Set(3u, Napi::Number::New(env, static_cast<double>(counts.lostEnd)));
  out.Set(4u, Napi::Number::New(env, counts.lostErrno));
  return out;
}

// guardReinstall(): the guard's signal handlers go back in front of one installed since (a
// process.on('SIGBUS' | 'SIGSEGV') listener's), chaining to it.
Napi::Value Reinstall(const Napi::CallbackInfo& info) {
  GuardReinstall();
  return info.Env().Undefined();
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("protect", Napi::Function::New(env, Protect, "protect"));
  exports.Set("advise", Napi::Function::New(env, Advise, "advise"));
  exports.Set("sync", Napi::Function::New(env, Sync, "sync"));
  exports.Set("flush", Napi::Function::New(env, Flush, "flush"));
  exports.Set("populate", Napi::Function::New(env, Populate, "populate"));
  exports.Set("name", Napi::Function::New(env, Name, "name"));
  exports.Set("lock", Napi::Function::New(env, Lock, "lock"));
  exports.Set("unlock", Napi::Function::New(env, Unlock, "unlock"));
  exports.Set("residency", Napi::Function::New(env, Residency, "residency"));
  exports.Set("guardFaults", Napi::Function::New(env, Faults, "guardFaults"));
  exports.Set("guardReport", Napi::Function::New(env, Report, "guardReport"));
  exports.Set("guardReinstall", Napi::Function::New(env, Reinstall, "guardReinstall"));
}

}  // namespace mman
