// The addon's hooks for the tools (the `mman` command, bench/) and the tests, exported as
// `native.tools` and nowhere beside map/unmap: the C loops the benchmarks compare against
// (first touches, mmap + munmap) timed in this process, posix_fadvise to evict a file's
// pages, populate()'s fallback on its own, and (source builds only) malloc's count of bytes in use.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#include <cstddef>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstdint>

#include <napi.h>

#include "answers.h"
#include "mapping.h"

namespace mman {

namespace {

// Where the read loop's sum goes, so the compiler cannot drop the reads.
volatile unsigned readSink;

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// touchPages(buffer: ArrayBuffer, stride, write) -> elapsed ns. Reads (or writes 1 to)
// one byte every `stride` bytes: one access per page, as the JavaScript loop does.
Napi::Value TouchPages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer() || !info[1].IsNumber()) {
    NAPI_THROW(ArgTypeError(env, "native: touchPages(ArrayBuffer, stride, write)"),
               env.Undefined());
  }
  auto buffer = info[0].As<Napi::ArrayBuffer>();
  int64_t stride = info[1].As<Napi::Number>().Int64Value();
  bool write = info[2].ToBoolean().Value();
  if (stride <= 0) {
    NAPI_THROW(ArgRangeError(env, "native: stride must be > 0"), env.Undefined());
  }
  auto* bytes = static_cast<volatile uint8_t*>(buffer.Data());
  size_t length = buffer.ByteLength();
  // Unrolled by four like the JavaScript loop, so both make the same accesses in the same order.
  size_t step = static_cast<size_t>(stride);
  size_t unrolledEnd = length > 3 * step ? length - 3 * step : 0;
  uint64_t start = NowNs();
  size_t i = 0;
  if (write) {
    for (; i < unrolledEnd; i += 4 * step) {
      bytes[i] = 1;
      bytes[i + step] = 1;
      bytes[i + 2 * step] = 1;
      bytes[i + 3 * step] = 1;
    }
    for (; i < length; i += step) bytes[i] = 1;
  } else {
    unsigned sum = 0;
    for (; i < unrolledEnd; i += 4 * step)
      sum += bytes[i] + bytes[i + step] + bytes[i + 2 * step] + bytes[i + 3 * step];
    for (; i < length; i += step) sum += bytes[i];
    readSink = sum;
  }
  return Napi::Number::New(env, static_cast<double>(NowNs() - start));
}

// readWords(buffer: ArrayBuffer, indexes: Uint32Array) -> elapsed ns. Reads the 32-bit word
// at each index, in order: the random reads of the TLB benchmark, as the JavaScript loop makes
// them.
Napi::Value ReadWords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer() || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    NAPI_THROW(ArgTypeError(env, "native: readWords(ArrayBuffer, Uint32Array)"), env.Undefined());
  }
  auto buffer = info[0].As<Napi::ArrayBuffer>();
  auto indexes = info[1].As<Napi::Uint32Array>();
  auto* words = static_cast<volatile uint32_t*>(buffer.Data());
  size_t count = buffer.ByteLength() / 4;
  const uint32_t* at = indexes.Data();
  size_t n = indexes.ElementLength();
  for (size_t i = 0; i < n; ++i) {
    if (at[i] >= count) {
      NAPI_THROW(ArgRangeError(env, "native: an index past the buffer"), env.Undefined());
    }
  }
  uint64_t start = NowNs();
  unsigned s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four sums, as the JavaScript loop keeps them
  size_t unrolled = n - n % 4;
  for (size_t i = 0; i < unrolled; i += 4) {
    s0 += words[at[i]];
    s1 += words[at[i + 1]];
    s2 += words[at[i + 2]];
    s3 += words[at[i + 3]];
  }
  for (size_t i = unrolled; i < n; ++i) s0 += words[at[i]];
  uint64_t took = NowNs() - start;
  readSink = s0 + s1 + s2 + s3;
  return Napi::Number::New(env, static_cast<double>(took));
}

// fadvise(fd, offset, length, advice) -> 0 | -errno. posix_fadvise returns the error.
Napi::Value Fadvise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; ++i) {
    if (!info[i].IsNumber()) {
      NAPI_THROW(ArgTypeError(env, "native: fadvise(fd, offset, length, advice)"), env.Undefined());
    }
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t offset = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  off_t length = static_cast<off_t>(info[2].As<Napi::Number>().Int64Value());
  int advice = info[3].As<Napi::Number>().Int32Value();
  int rc = posix_fadvise(fd, offset, length, advice);
  return Napi::Number::New(env, -rc);
}

// mapUnmapLoop(iterations) -> ns per one-page mmap + munmap, run inside this process:
// the C baseline with the same threads and address space as the JavaScript one.
Napi::Value MapUnmapLoop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    NAPI_THROW(ArgTypeError(env, "native: mapUnmapLoop(iterations)"), env.Undefined());
  }
  int64_t iterations = info[0].As<Napi::Number>().Int64Value();
  if (iterations <= 0) {
    NAPI_THROW(ArgRangeError(env, "native: iterations must be > 0"), env.Undefined());
  }
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  uint64_t start = NowNs();
  for (int64_t i = 0; i < iterations; ++i) {
    void* p = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Napi::Number::New(env, -errno);
    munmap(p, page);
  }
  return Napi::Number::New(env,
                           static_cast<double>(NowNs() - start) / static_cast<double>(iterations));
}

#if defined(MMAN_TEST_HOOKS)
// mallocInUse() -> bytes malloc has handed out and not had back (glibc), or -1: lets soak
// runs tell a native leak from V8 sizing its heap. A test hook: source builds have it, the
// prebuilds (scripts/prebuilds.sh) do not, so they need no mallinfo2 (glibc 2.33).
Napi::Value MallocInUse(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 m = mallinfo2();
  return Napi::Number::New(info.Env(), static_cast<double>(m.uordblks + m.hblkhd));
#else
  return Napi::Number::New(info.Env(), -1);
#endif
}
#endif

// populateByTouch(handle, offset, length) -> 0 | -errno: populate()'s fallback for kernels
// without MADV_POPULATE_READ, run here on this thread so the tests reach it on any kernel.
Napi::Value PopulateByTouchHook(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Region* region = UnwrapRegion(env, info[0]);
  if (region == nullptr) return env.Undefined();
  size_t length;
  uint8_t* addr = RegionRange(env, region, info[1], info[2], &length);
  if (addr == nullptr) return env.Undefined();
  return Napi::Number::New(env, PopulateByTouch(addr, length));
}

}  // namespace

void InitTools(Napi::Env env, Napi::Object tools) {
  tools.Set("touchPages", Napi::Function::New(env, TouchPages, "touchPages"));
  tools.Set("fadvise", Napi::Function::New(env, Fadvise, "fadvise"));
  tools.Set("readWords", Napi::Function::New(env, ReadWords, "readWords"));
  tools.Set("populateByTouch", Napi::Function::New(env, PopulateByTouchHook, "populateByTouch"));
  tools.Set("mapUnmapLoop", Napi::Function::New(env, MapUnmapLoop, "mapUnmapLoop"));
  Napi::Object fadv = Napi::Object::New(env);
  fadv.Set("POSIX_FADV_NORMAL", Napi::Number::New(env, POSIX_FADV_NORMAL));
  fadv.Set("POSIX_FADV_SEQUENTIAL", Napi::Number::New(env, POSIX_FADV_SEQUENTIAL));
  fadv.Set("POSIX_FADV_RANDOM", Napi::Number::New(env, POSIX_FADV_RANDOM));
  fadv.Set("POSIX_FADV_WILLNEED", Napi::Number::New(env, POSIX_FADV_WILLNEED));
  fadv.Set("POSIX_FADV_DONTNEED", Napi::Number::New(env, POSIX_FADV_DONTNEED));
  fadv.Set("POSIX_FADV_NOREUSE", Napi::Number::New(env, POSIX_FADV_NOREUSE));
  tools.Set("fadviseConstants", fadv);
#if defined(MMAN_TEST_HOOKS)
  tools.Set("mallocInUse", Napi::Function::New(env, MallocInUse, "mallocInUse"));
#endif
}

}  // namespace mman
