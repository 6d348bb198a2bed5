// memfd_create and file seals (fcntl F_ADD_SEALS / F_GET_SEALS), the descriptor calls
// SharedMemory makes on the descriptors it owns (open, fstat, ftruncate, fchmod, close), and
// the process-wide table through which a descriptor is handed to another thread (share()).
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/mman.h>
#include <linux/magic.h>
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
#include "env.h"
#include "jobs.h"

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

// The calling thread owns `fd` from now on (env.h): it goes with the thread unless closed.
int Owned(Napi::Env env, int fd) {
  if (fd >= 0) AddonEnvOf(env)->ownedFds.insert(fd);
  return fd;
}

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
  return Napi::Number::New(env, Owned(env, fd));
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

// Waits until `events` on `fd`, the deadline (timeoutMs from `start`; -1: none) or the
// environment's cancel descriptor: 0, -ETIMEDOUT, -ECANCELED or -errno.
int PollFor(int fd, short events, int cancelFd, int timeoutMs, uint64_t start) {
  for (;;) {
    int wait = -1;
    if (timeoutMs >= 0) {
      uint64_t elapsed = NowMs() - start;
      if (elapsed >= static_cast<uint64_t>(timeoutMs)) return -ETIMEDOUT;
      wait = static_cast<int>(static_cast<uint64_t>(timeoutMs) - elapsed);
    }
    pollfd p[2] = {{fd, events, 0}, {cancelFd, POLLIN, 0}};
    int n = poll(p, 2, wait);
    if (n < 0 && errno != EINTR) return -errno;
    if (n > 0 && (p[1].revents & POLLIN) != 0) return -ECANCELED;
    if (n > 0 && p[0].revents != 0) return 0;  // ready, or an error the next call reports
  }
}

// The sockets a job uses are its own duplicates: closing the socket in JavaScript meanwhile
// (and the number going to another file) changes nothing for it.
int DupCloexec(int fd) {
  return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

// What sendFd and recvFd share: a job on a thread of its own (jobs.h) over a duplicate of a
// socket, with a timeout, a descriptor it sends or receives (closed with the job unless handed
// over), and a promise for its result.
class SocketJob : public ThreadJob {
 public:
  SocketJob(int socket, int timeoutMs) : timeoutMs_(timeoutMs) {
    socket_ = DupCloexec(socket);
    if (socket_ < 0) result_ = -errno;
  }
  ~SocketJob() override {
    if (fd_ >= 0) close(fd_);
    if (socket_ >= 0) close(socket_);
  }
  void Abandon() override {}  // the destructor closes the descriptors

  // Starts the job: { promise, id } (for cancelJob()), or [-errno, syscall] if it could not:
  // a descriptor it needs could not be duplicated (fcntl), or the job not started (jobs.h).
  static Napi::Value Start(Napi::Env env, SocketJob* job) {
    const char* syscall = "fcntl";
    double id = job->result_;  // a duplicate the constructor could not make
    if (id < 0) {
      delete job;
    } else {
      id = StartThreadJob(env, job, &syscall);
    }
    if (id < 0) {
      Napi::Array failed = Napi::Array::New(env, 2);
      failed.Set(0u, Napi::Number::New(env, id));
      failed.Set(1u, Napi::String::New(env, syscall));
      return failed;
    }
    // Made once the job runs: a promise made for a job that never started would never be
    // settled, and its deferred (napi has no other way to free one) would leak.
    Napi::Value promise = job->promise_.Make(env);
    Napi::Object out = Napi::Object::New(env);
    out.Set("promise", promise);
    out.Set("id", Napi::Number::New(env, id));
    return out;
  }

 protected:
  JobPromise promise_;
  int socket_ = -1;
  int fd_ = -1;
  int timeoutMs_;
  int result_ = 0;
};

// sendFd: one sendmsg of `payload` with `fd` attached, waiting for room first.
class SendFdJob : public SocketJob {
 public:
  SendFdJob(int socket, int fd, std::string payload, int timeoutMs)
      : SocketJob(socket, timeoutMs), payload_(std::move(payload)) {
    if (result_ < 0) return;
    fd_ = DupCloexec(fd);
    if (fd_ < 0) result_ = -errno;
  }

  void Run(int cancelFd) override {
    if (result_ < 0) return;
    uint64_t start = NowMs();
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
      pollfd cancelled = {cancelFd, POLLIN, 0};  // cancelled before it could send: send nothing
      if (poll(&cancelled, 1, 0) > 0) {
        result_ = -ECANCELED;
        return;
      }
      ssize_t n = sendmsg(socket_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) return;  // a stream socket takes a message this small whole, or not at all
      if (errno == EINTR) continue;
      if (errno != EAGAIN) break;
      if ((result_ = PollFor(socket_, POLLOUT, cancelFd, timeoutMs_, start)) != 0) return;
    }
    result_ = -errno;
  }
  void Deliver(Napi::Env env) override { promise_.Resolve(env, Napi::Number::New(env, result_)); }

 private:
  std::string payload_;
};

// sendFd(socket, fd, payload: string, timeoutMs) -> { promise: Promise<0 | -errno>, id }.
// Sends a duplicate made now, so that closing `fd` meanwhile changes nothing; -ECANCELED if
// cancelJob(id) came first (the socket was closed in JavaScript).
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return SocketJob::Start(env, new SendFdJob(info[0].As<Napi::Number>().Int32Value(),
                                             info[1].As<Napi::Number>().Int32Value(),
                                             info[2].As<Napi::String>().Utf8Value(),
                                             info[3].As<Napi::Number>().Int32Value()));
}

// cancelJob(id) -> whether it was pending: a sendFd or recvFd whose socket JavaScript closed
// ends now with -ECANCELED.
Napi::Value CancelJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, CancelThreadJob(env, info[0].As<Napi::Number>().DoubleValue()));
}

// recvFd: waits for one message and takes the descriptor it carries (MSG_CMSG_CLOEXEC). Any
// descriptor beyond the first is closed; none at all is -EBADMSG; the peer closing first is
// -ECONNRESET.
class RecvFdJob : public SocketJob {
 public:
  RecvFdJob(int socket, int timeoutMs) : SocketJob(socket, timeoutMs) {}

  void Run(int cancelFd) override {
    if (result_ < 0) return;
    uint64_t start = NowMs();
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
      if ((result_ = PollFor(socket_, POLLIN, cancelFd, timeoutMs_, start)) != 0) return;
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
    // Who sent it, as the kernel knows the peer (the credentials it connected with).
    ucred cred = {};
    socklen_t len = sizeof cred;
    if (getsockopt(socket_, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) peerUid_ = cred.uid;
  }
  void Deliver(Napi::Env env) override {
    if (result_ < 0) {
      promise_.Resolve(env, Napi::Number::New(env, result_));
      return;
    }
    int fd = Owned(env, fd_);
    fd_ = -1;  // the thread's now: closed with it, if JavaScript does not close it first
    Napi::Array out = Napi::Array::New(env, 3);
    out.Set(0u, Napi::Number::New(env, fd));
    out.Set(1u, Napi::String::New(env, payload_, length_));
    out.Set(2u, Napi::Number::New(
                    env, peerUid_ == static_cast<uid_t>(-1) ? -1 : static_cast<double>(peerUid_)));
    promise_.Resolve(env, out);
  }

 private:
  char payload_[512];
  size_t length_ = 0;
  uid_t peerUid_ = static_cast<uid_t>(-1);
};

// recvFd(socket, timeoutMs) -> { promise: Promise<[fd, payload, peer uid (-1: unknown)] |
// -errno>, id }
Napi::Value RecvFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return SocketJob::Start(env, new RecvFdJob(info[0].As<Napi::Number>().Int32Value(),
                                             info[1].As<Napi::Number>().Int32Value()));
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
  return Napi::Number::New(env, Owned(env, fd));
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

// Every open the addon makes never waits and never takes a terminal: O_NONBLOCK (a FIFO or
// a device someone planted where a file was expected opens at once, and is refused by type
// afterwards), O_NOCTTY and O_CLOEXEC. On a regular file O_NONBLOCK changes nothing.
constexpr int kOpenFlags = O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

// The huge page size of a file on hugetlbfs (which maps and unmaps only whole huge pages),
// else 0. Its st_blksize is the huge page size; only a large one is worth an fstatfs.
size_t HugePageOf(int fd, const struct stat& st) {
  if (!S_ISREG(st.st_mode) ||
      static_cast<size_t>(st.st_blksize) <= static_cast<size_t>(sysconf(_SC_PAGESIZE)))
    return 0;
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0 || static_cast<uint32_t>(fs.f_type) != HUGETLBFS_MAGIC) return 0;
  return static_cast<size_t>(st.st_blksize);
}

// [fd, st_mode, st_size, created, huge page size or 0] of a descriptor just opened, or -errno
// (and it closed).
Napi::Value Opened(Napi::Env env, int fd, bool created) {
  if (fd < 0) return Errno(env, errno);
  Owned(env, fd);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    AddonEnvOf(env)->ownedFds.erase(fd);
    close(fd);
    return Errno(env, err);
  }
  Napi::Array out = Napi::Array::New(env, 5);
  out.Set(0u, Napi::Number::New(env, fd));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(st.st_mode)));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(st.st_size)));
  out.Set(3u, Napi::Boolean::New(env, created));
  out.Set(4u, Napi::Number::New(env, static_cast<double>(HugePageOf(fd, st))));
  return out;
}

// A path as a string (UTF-8) or a Buffer (its bytes exactly, as node:fs takes one). A NUL
// inside is refused by the caller before (it would cut the path short here).
bool IsPath(const Napi::Value& value) {
  return value.IsString() || value.IsBuffer();
}

std::string PathOf(const Napi::Value& value) {
  if (value.IsString()) return value.As<Napi::String>().Utf8Value();
  auto bytes = value.As<Napi::Buffer<char>>();
  return std::string(bytes.Data(), bytes.Length());
}

// open(2) with O_CREAT tells nobody whether it made the file: try O_EXCL first, and fall back
// to opening what is there. `created` says which it was (a failed reservation removes it).
int OpenTelling(const char* path, int flags, mode_t mode, bool* created) {
  *created = false;
  if ((flags & O_CREAT) != 0 && (flags & O_EXCL) == 0) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      int fd = open(path, flags | O_EXCL | kOpenFlags, mode);
      if (fd >= 0) {
        *created = true;
        return fd;
      }
      if (errno != EEXIST) return -1;
      fd = open(path, (flags & ~O_CREAT) | kOpenFlags, mode);
      if (fd >= 0 || errno != ENOENT) return fd;  // removed in between: try again
    }
    errno = EEXIST;
    return -1;
  }
  int fd = open(path, flags | kOpenFlags, mode);
  *created = fd >= 0 && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
  return fd;
}

// openFile(path, flags, mode) -> [fd, st_mode, st_size, created] | -errno
Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsPath(info[0]) || !info[1].IsNumber() || !info[2].IsNumber()) {
    NAPI_THROW(ArgTypeError(env, "native: openFile(path, flags, mode)"), env.Undefined());
  }
  std::string path = PathOf(info[0]);
  bool created;
  int fd = OpenTelling(path.c_str(), info[1].As<Napi::Number>().Int32Value(),
                       static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value()), &created);
  return Opened(env, fd, created);
}

// openFileAsync(path, flags, mode) -> Promise<[fd, st_mode, st_size, created] | -errno>: the
// same on the threadpool (a slow disk or network filesystem must not hold the event loop).
class OpenJob : public PoolJob {
 public:
  OpenJob(Napi::Env env, std::string path, int flags, mode_t mode)
      : PoolJob(env, "mman.open"),
        promise_(env),
        path_(std::move(path)),
        flags_(flags),
        mode_(mode) {}
  ~OpenJob() override {
    if (fd_ >= 0) close(fd_);
  }
  Napi::Value Promise() const { return promise_.Value(); }

 protected:
  void Execute() override {
    fd_ = OpenTelling(path_.c_str(), flags_, mode_, &created_);
    if (fd_ < 0) err_ = errno;
  }
  void Deliver(Napi::Env env) override {
    errno = err_;
    int fd = fd_;
    fd_ = -1;  // the thread's now (Opened), closed with it if nothing else closes it first
    Napi::Value out = Opened(env, fd, created_);
    promise_.Resolve(env, out);
  }
  void Abandon() override {}  // the destructor closes what was opened

 private:
  JobPromise promise_;
  std::string path_;
  int flags_;
  mode_t mode_;
  int fd_ = -1;
  int err_ = 0;
  bool created_ = false;
};

Napi::Value OpenFileAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsPath(info[0]) || !info[1].IsNumber() || !info[2].IsNumber()) {
    NAPI_THROW(ArgTypeError(env, "native: openFileAsync(path, flags, mode)"), env.Undefined());
  }
  auto* job = new OpenJob(env, PathOf(info[0]), info[1].As<Napi::Number>().Int32Value(),
                          static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value()));
  Napi::Value promise = job->Promise();
  job->Queue();
  return promise;
}

// fdAllocate(fd, offset, length) -> 0 | -errno: reserves the blocks of [offset, offset + length)
// (fallocate(2) mode 0), extending the file if that goes past its end; on tmpfs this commits
// the memory. -EOPNOTSUPP where the filesystem cannot reserve.
Napi::Value FdAllocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto offset = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  auto length = static_cast<off_t>(info[2].As<Napi::Number>().Int64Value());
  for (;;) {
    if (fallocate(fd, 0, offset, length) == 0) return Napi::Number::New(env, 0);
    if (errno != EINTR) return Errno(env, errno);
  }
}

// describeFd(fd) -> [st_mode, F_GETFL flags, f_type of its filesystem, owner uid] | -errno: what
// receive() checks of a descriptor a peer sent, asking the kernel rather than believing the
// message that came with it.
Napi::Value DescribeFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  struct statfs fs;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fstat(fd, &st) != 0 || fstatfs(fd, &fs) != 0) return Errno(env, errno);
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(st.st_mode)));
  out.Set(1u, Napi::Number::New(env, flags));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(fs.f_type))));
  out.Set(3u, Napi::Number::New(env, static_cast<double>(st.st_uid)));
  return out;
}

// isFileAt(fd, path) -> true if `path` (not followed if a symlink) is the very file `fd` is:
// the same device and inode.
Napi::Value IsFileAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (!IsPath(info[1]))
    NAPI_THROW(ArgTypeError(env, "native: isFileAt(fd, path)"), env.Undefined());
  struct stat a, b;
  bool same = fstat(fd, &a) == 0 && lstat(PathOf(info[1]).c_str(), &b) == 0 &&
              a.st_dev == b.st_dev && a.st_ino == b.st_ino;
  return Napi::Boolean::New(env, same);
}

// fdStat(fd) -> [st_mode, st_size, huge page size or 0] | -errno
Napi::Value FdStat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct stat st;
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fstat(fd, &st) != 0) return Errno(env, errno);
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(st.st_mode)));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(st.st_size)));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(HugePageOf(fd, st))));
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

// ownFd(fd): the calling thread's SharedMemory holds `fd` now (one it was given: fromFd()); it
// is closed with the thread unless fdClose() closes it first.
Napi::Value OwnFd(const Napi::CallbackInfo& info) {
  AddonEnvOf(info.Env())->ownedFds.insert(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// ownsFd(fd) -> whether the calling thread owns `fd` already (something of the addon's will close
// it).
Napi::Value OwnsFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(
      env, AddonEnvOf(env)->ownedFds.count(info[0].As<Napi::Number>().Int32Value()) != 0);
}

// fdClose(fd) -> 0 | -errno: closes it, and the thread owns it no more.
Napi::Value FdClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  AddonEnvOf(env)->ownedFds.erase(fd);
  if (close(fd) != 0) return Errno(env, errno);
  return Napi::Number::New(env, 0);
}

}  // namespace

void InitShared(Napi::Env env, Napi::Object exports) {
  exports.Set("openFile", Napi::Function::New(env, OpenFile, "openFile"));
  exports.Set("openFileAsync", Napi::Function::New(env, OpenFileAsync, "openFileAsync"));
  exports.Set("fdAllocate", Napi::Function::New(env, FdAllocate, "fdAllocate"));
  exports.Set("fdStat", Napi::Function::New(env, FdStat, "fdStat"));
  exports.Set("describeFd", Napi::Function::New(env, DescribeFd, "describeFd"));
  exports.Set("isFileAt", Napi::Function::New(env, IsFileAt, "isFileAt"));
  exports.Set("fdTruncate", Napi::Function::New(env, FdTruncate, "fdTruncate"));
  exports.Set("fdChmod", Napi::Function::New(env, FdChmod, "fdChmod"));
  exports.Set("fdClose", Napi::Function::New(env, FdClose, "fdClose"));
  exports.Set("ownFd", Napi::Function::New(env, OwnFd, "ownFd"));
  exports.Set("ownsFd", Napi::Function::New(env, OwnsFd, "ownsFd"));
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
  exports.Set("cancelJob", Napi::Function::New(env, CancelJob, "cancelJob"));
  Napi::Object c = exports.Get("constants").As<Napi::Object>();
  MMAN_EXPORT_CONSTANT(c, MFD_CLOEXEC);
  MMAN_EXPORT_CONSTANT(c, MFD_ALLOW_SEALING);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_SEAL);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_SHRINK);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_GROW);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_WRITE);
  MMAN_EXPORT_CONSTANT(c, F_SEAL_FUTURE_WRITE);
  MMAN_EXPORT_CONSTANT(c, MFD_NOEXEC_SEAL);
  MMAN_EXPORT_CONSTANT(c, TMPFS_MAGIC);
  MMAN_EXPORT_CONSTANT(c, HUGETLBFS_MAGIC);
  MMAN_EXPORT_CONSTANT(c, O_PATH);
}

}  // namespace mman
