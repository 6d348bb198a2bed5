// memfd_create and file seals (fcntl F_ADD_SEALS / F_GET_SEALS), and the descriptor calls
// SharedMemory makes on the descriptors it owns (open, fstat, ftruncate, fchmod, close).
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include <napi.h>

#include "answers.h"

namespace mman {

namespace {

// memfdCreate(name, flags) -> fd | -errno
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber()) {
    NAPI_THROW(ArgTypeError(env, "native: memfdCreate(name: string, flags: number)"),
               env.Undefined());
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  unsigned flags = info[1].As<Napi::Number>().Uint32Value();
  int fd = memfd_create(name.c_str(), flags);
  if (fd < 0) return Errno(env, errno);
  return Napi::Number::New(env, fd);
}

// addSeals(fd, seals) -> 0 | -errno
Napi::Value AddSeals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int seals = info[1].As<Napi::Number>().Int32Value();
  if (fcntl(fd, F_ADD_SEALS, seals) != 0) return Errno(env, errno);
  return Napi::Number::New(env, 0);
}

// getSeals(fd) -> seals | -errno
Napi::Value GetSeals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return Errno(env, errno);
  return Napi::Number::New(env, seals);
}

// setCloexec(fd, on) -> 0 | -errno: an inherited fd must not leak into the child's own children.
Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool on = info[1].ToBoolean().Value();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return Errno(env, errno);
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (fcntl(fd, F_SETFD, flags) != 0) return Errno(env, errno);
  return Napi::Number::New(env, 0);
}

// The descriptors SharedMemory holds are the addon's own, from open to close: some runtimes'
// fs modules (Deno's) refuse a descriptor they did not open themselves.

// openFile(path, flags, mode) -> fd | -errno. O_CLOEXEC always.
Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    NAPI_THROW(ArgTypeError(env, "native: openFile(path, flags, mode)"), env.Undefined());
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int flags = info[1].As<Napi::Number>().Int32Value() | O_CLOEXEC;
  auto mode = static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value());
  int fd = open(path.c_str(), flags, mode);
  if (fd < 0) return Errno(env, errno);
  return Napi::Number::New(env, fd);
}

// fdStat(fd) -> [st_mode, st_size] | -errno
Napi::Value FdStat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct stat st;
  if (fstat(info[0].As<Napi::Number>().Int32Value(), &st) != 0) return Errno(env, errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(st.st_mode)));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(st.st_size)));
  return out;
}

// fdTruncate(fd, size) -> 0 | -errno
Napi::Value FdTruncate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto size = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  if (ftruncate(fd, size) != 0) return Errno(env, errno);
  return Napi::Number::New(env, 0);
}

// fdChmod(fd, mode) -> 0 | -errno
Napi::Value FdChmod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fchmod(fd, static_cast<mode_t>(info[1].As<Napi::Number>().Uint32Value())) != 0)
    return Errno(env, errno);
  return Napi::Number::New(env, 0);
}

// fdClose(fd) -> 0 | -errno
Napi::Value FdClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (close(info[0].As<Napi::Number>().Int32Value()) != 0) return Errno(env, errno);
  return Napi::Number::New(env, 0);
}

}  // namespace

void InitShared(Napi::Env env, Napi::Object exports) {
  exports.Set("openFile", Napi::Function::New(env, OpenFile, "openFile"));
  exports.Set("fdStat", Napi::Function::New(env, FdStat, "fdStat"));
  exports.Set("fdTruncate", Napi::Function::New(env, FdTruncate, "fdTruncate"));
  exports.Set("fdChmod", Napi::Function::New(env, FdChmod, "fdChmod"));
  exports.Set("fdClose", Napi::Function::New(env, FdClose, "fdClose"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("addSeals", Napi::Function::New(env, AddSeals, "addSeals"));
  exports.Set("getSeals", Napi::Function::New(env, GetSeals, "getSeals"));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
  Napi::Object c = exports.Get("constants").As<Napi::Object>();
  MMAN_EXPORT_CONSTANT(c, MFD_CLOEXEC);
  MMAN_EXPORT_CONSTANT(c, MFD_ALLOW_SEALING);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_SEAL);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_SHRINK);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_GROW);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_WRITE);
}

}  // namespace mman
