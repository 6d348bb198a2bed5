// memfd_create and file seals (fcntl F_ADD_SEALS / F_GET_SEALS), the descriptor calls
// SharedMemory makes on the descriptors it owns (open, fstat, ftruncate, fchmod, close), and
// the process-wide table through which a descriptor is handed to another thread (share()).
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>

#include <napi.h>

#include "answers.h"

#ifndef F_SEAL_FUTURE_WRITE  // Linux 5.1
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef MFD_NOEXEC_SEAL  // Linux 6.3
#define MFD_NOEXEC_SEAL 0x0008U
#endif

namespace mman {

namespace {

// Descriptors on their way to another thread of this process: share() puts a duplicate
// here under a random id, from() takes it out, once. One never taken is closed when it
// expires (swept by every share and take, and by a timer of the sharing thread).
struct Shared {
  int fd;
  uint64_t expires;  // CLOCK_MONOTONIC ms
};
std::mutex sharedLock;
std::unordered_map<uint64_t, Shared>* sharedFds = new std::unordered_map<uint64_t, Shared>();

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// Closes the expired entries; sharedLock held.
void SweepLocked(uint64_t now) {
  for (auto it = sharedFds->begin(); it != sharedFds->end();) {
    if (it->second.expires <= now) {
      close(it->second.fd);
      it = sharedFds->erase(it);
    } else {
      ++it;
    }
  }
}

// shareFd(fd, ttlMs) -> id (hex string) | -errno: a close-on-exec duplicate of fd, kept until
// takeFd(id) or ttlMs from now.
Napi::Value ShareFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  double ttl = info[1].As<Napi::Number>().DoubleValue();
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return Errno(env, errno);
  static std::mt19937_64 random{std::random_device{}()};
  uint64_t id;
  {
    std::lock_guard<std::mutex> hold(sharedLock);
    uint64_t now = NowMs();
    SweepLocked(now);
    do id = random();
    while (id == 0 || sharedFds->count(id) != 0);
    (*sharedFds)[id] = {dup, now + static_cast<uint64_t>(ttl)};
  }
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(id));
  return Napi::String::New(env, hex);
}

// takeFd(id) -> fd | -ENOENT (never shared, taken already, or expired)
Napi::Value TakeFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string hex = info[0].As<Napi::String>().Utf8Value();
  uint64_t id = strtoull(hex.c_str(), nullptr, 16);
  std::lock_guard<std::mutex> hold(sharedLock);
  SweepLocked(NowMs());
  auto it = sharedFds->find(id);
  if (it == sharedFds->end()) return Napi::Number::New(env, -ENOENT);
  int fd = it->second.fd;
  sharedFds->erase(it);
  return Napi::Number::New(env, fd);
}

// ---- passing a descriptor over a Unix-domain socket (SCM_RIGHTS) ----

// socketDomain(fd) -> AF_* of a socket | -errno (ENOTSOCK for anything else)
Napi::Value SocketDomain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int domain = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_DOMAIN, &domain, &len) !=
      0)
    return Errno(env, errno);
  return Napi::Number::New(env, domain);
}

// Waits up to timeoutMs (-1: forever) for `events` on fd: 0, -ETIMEDOUT or -errno.
int PollFor(int fd, short events, int timeoutMs) {
  pollfd p = {fd, events, 0};
  for (;;) {
    int n = poll(&p, 1, timeoutMs);
    if (n > 0) return 0;
    if (n == 0) return -ETIMEDOUT;
    if (errno != EINTR) return -errno;
  }
}

// On the threadpool: one sendmsg of `payload` with `fd` attached, waiting for room first.
class SendFdWorker : public Napi::AsyncWorker {
 public:
  SendFdWorker(Napi::Env env, int socket, int fd, std::string payload, int timeoutMs)
      : Napi::AsyncWorker(env, "mman.sendFd"),
        deferred_(Napi::Promise::Deferred::New(env)),
        socket_(socket),
        fd_(fd),
        payload_(std::move(payload)),
        timeoutMs_(timeoutMs) {}
  ~SendFdWorker() override {
    if (fd_ >= 0) close(fd_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (fd_ < 0) {
      result_ = fd_;
      return;
    }
    iovec iov = {payload_.data(), payload_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd_, sizeof(int));
    for (;;) {
      ssize_t n = sendmsg(socket_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) return;  // a stream socket takes a message this small whole, or not at all
      if (errno == EINTR) continue;
      if (errno != EAGAIN) break;
      if ((result_ = PollFor(socket_, POLLOUT, timeoutMs_)) != 0) return;
    }
    result_ = -errno;
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int socket_;
  int fd_;
  std::string payload_;
  int timeoutMs_;
  int result_ = 0;
};

// sendFd(socket, fd, payload: string, timeoutMs) -> Promise<0 | -errno>. Sends a duplicate
// made now, so that closing `fd` meanwhile changes nothing.
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dup = fcntl(info[1].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  auto* worker = new SendFdWorker(env, info[0].As<Napi::Number>().Int32Value(),
                                  dup < 0 ? -errno : dup, info[2].As<Napi::String>().Utf8Value(),
                                  info[3].As<Napi::Number>().Int32Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// On the threadpool: waits for one message and takes the descriptor it carries
// (MSG_CMSG_CLOEXEC). Any descriptor beyond the first is closed; none at all is -EBADMSG;
// the peer closing first is -ECONNRESET.
class RecvFdWorker : public Napi::AsyncWorker {
 public:
  RecvFdWorker(Napi::Env env, int socket, int timeoutMs)
      : Napi::AsyncWorker(env, "mman.recvFd"),
        deferred_(Napi::Promise::Deferred::New(env)),
        socket_(socket),
        timeoutMs_(timeoutMs) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    iovec iov = {payload_, sizeof payload_};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    for (;;) {
      n = recvmsg(socket_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n >= 0) break;
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        result_ = -errno;
        return;
      }
      if ((result_ = PollFor(socket_, POLLIN, timeoutMs_)) != 0) return;
    }
    length_ = static_cast<size_t>(n);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (fd_ < 0)
          fd_ = fd;
        else
          close(fd);  // one segment per message: the rest would leak
      }
    }
    if (fd_ < 0) result_ = n == 0 ? -ECONNRESET : -EBADMSG;
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_ < 0) {
      deferred_.Resolve(Napi::Number::New(env, result_));
      return;
    }
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, Napi::Number::New(env, fd_));
    out.Set(1u, Napi::String::New(env, payload_, length_));
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& error) override {
    if (fd_ >= 0) close(fd_);
    deferred_.Reject(error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  int socket_;
  int timeoutMs_;
  char payload_[512];
  size_t length_ = 0;
  int fd_ = -1;
  int result_ = 0;
};

// recvFd(socket, timeoutMs) -> Promise<[fd, payload] | -errno>
Napi::Value RecvFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* worker = new RecvFdWorker(env, info[0].As<Napi::Number>().Int32Value(),
                                  info[1].As<Napi::Number>().Int32Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// sweepShared() -> how many are still waiting to be taken
Napi::Value SweepShared(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> hold(sharedLock);
  SweepLocked(NowMs());
  return Napi::Number::New(info.Env(), static_cast<double>(sharedFds->size()));
}

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
  exports.Set("shareFd", Napi::Function::New(env, ShareFd, "shareFd"));
  exports.Set("takeFd", Napi::Function::New(env, TakeFd, "takeFd"));
  exports.Set("sweepShared", Napi::Function::New(env, SweepShared, "sweepShared"));
  exports.Set("socketDomain", Napi::Function::New(env, SocketDomain, "socketDomain"));
  exports.Set("sendFd", Napi::Function::New(env, SendFd, "sendFd"));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd, "recvFd"));
  Napi::Object c = exports.Get("constants").As<Napi::Object>();
  MMAN_EXPORT_CONSTANT(c, MFD_CLOEXEC);
  MMAN_EXPORT_CONSTANT(c, MFD_ALLOW_SEALING);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_SEAL);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_SHRINK);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_GROW);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_WRITE);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_FUTURE_WRITE);
  MMAN_EXPORT_CONSTANT(c, MFD_NOEXEC_SEAL);
}

}  // namespace mman
