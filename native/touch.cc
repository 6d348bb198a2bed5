// What the benchmarks need from C: the same loops the JavaScript runs (first touches,
// mmap + munmap), timed here so both are compared in one run; posix_fadvise to evict pages.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#include <cstddef>
#include <cstdint>

#include <napi.h>

#include "answers.h"

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

// fadvise(fd, offset, length, advice) -> 0 | -errno. posix_fadvise returns the error.
Napi::Value Fadvise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; ++i) {
    if (!info[i].IsNumber()) {
      NAPI_THROW(ArgTypeError(env, "native: fadvise(fd, offset, length, advice)"),
                 env.Undefined());
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
  return Napi::Number::New(env, static_cast<double>(NowNs() - start) / static_cast<double>(iterations));
}

}  // namespace

void InitTouch(Napi::Env env, Napi::Object exports) {
  exports.Set("touchPages", Napi::Function::New(env, TouchPages, "touchPages"));
  exports.Set("fadvise", Napi::Function::New(env, Fadvise, "fadvise"));
  exports.Set("mapUnmapLoop", Napi::Function::New(env, MapUnmapLoop, "mapUnmapLoop"));
  Napi::Object fadv = Napi::Object::New(env);
  fadv.Set("POSIX_FADV_NORMAL", Napi::Number::New(env, POSIX_FADV_NORMAL));
  fadv.Set("POSIX_FADV_SEQUENTIAL", Napi::Number::New(env, POSIX_FADV_SEQUENTIAL));
  fadv.Set("POSIX_FADV_RANDOM", Napi::Number::New(env, POSIX_FADV_RANDOM));
  fadv.Set("POSIX_FADV_WILLNEED", Napi::Number::New(env, POSIX_FADV_WILLNEED));
  fadv.Set("POSIX_FADV_DONTNEED", Napi::Number::New(env, POSIX_FADV_DONTNEED));
  fadv.Set("POSIX_FADV_NOREUSE", Napi::Number::New(env, POSIX_FADV_NOREUSE));
  exports.Set("fadviseConstants", fadv);
}

}  // namespace mman
