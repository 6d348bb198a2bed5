// A mutex in one 32-bit word of shared memory, for threads and processes alike, that
// survives its holder's death. The word holds the holder's thread id (gettid), as the
// kernel's own futex words do: 0 free, tid held, tid | kWaiters held with sleepers. Lockers
// sleep in FUTEX_WAIT (not private: the key is the shared page), and wake every
// kLivenessMs to ask whether the holder still exists (kill(tid, 0), then /proc for a
// zombie); one that does not is taken over, and the new holder is told (kLockOwnerDied).
//
// Why not the kernel's robust futex list: it is one list per thread, registered with
// set_robust_list(2), and glibc owns it (for its robust pthread mutexes); its entries must
// sit at a fixed offset before the futex word, which a word in someone's Int32Array has no
// room for. The liveness check needs all lockers in one PID namespace.
//
// Not fair: a thread that unlocks and locks again may take it before a woken sleeper
// (barging), as with a default pthread mutex. No priority inheritance.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "answers.h"
#include "futex.h"

namespace mman {

namespace {

constexpr uint32_t kTidMask = FUTEX_TID_MASK;  // 0x3fffffff
constexpr uint32_t kWaiters = FUTEX_WAITERS;   // 0x80000000
constexpr double kLivenessMs = 50;             // a sleeper looks at the holder this often

uint32_t ThisThread() {
  thread_local uint32_t tid = static_cast<uint32_t>(syscall(SYS_gettid));
  return tid;
}

// True when no thread `tid` exists any more (or only its zombie, not yet reaped).
bool Gone(uint32_t tid) {
  if (kill(static_cast<pid_t>(tid), 0) != 0) return errno == ESRCH;  // EPERM: it exists
  char path[64];
  snprintf(path, sizeof path, "/proc/%u/stat", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* end = strrchr(buf, ')');  // "pid (comm) S ...": comm may hold spaces and parens
  return end != nullptr && (end[2] == 'Z' || end[2] == 'X');
}

uint32_t Load(int32_t* word) {
  return static_cast<uint32_t>(__atomic_load_n(word, __ATOMIC_ACQUIRE));
}

bool Cas(int32_t* word, uint32_t* expected, uint32_t desired) {
  return __atomic_compare_exchange_n(word, reinterpret_cast<int32_t*>(expected),
                                     static_cast<int32_t>(desired), false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE);
}

// One attempt. `contended`: take it marked kWaiters (a woken sleeper must, or the sleepers
// after it would never be woken). kLockAcquired, kLockOwnerDied, kLockBusy or -EDEADLK.
int TryLock(int32_t* word, uint32_t self, bool contended, bool checkHolder) {
  uint32_t c = 0;
  if (Cas(word, &c, contended ? (self | kWaiters) : self)) return answers::kLockAcquired;
  uint32_t holder = c & kTidMask;
  if (holder == self) return -EDEADLK;
  if (checkHolder && (holder == 0 || Gone(holder))) {
    // Take it over from the dead holder, keeping the sleepers' mark.
    if (Cas(word, &c, self | (c & kWaiters)))
      return holder == 0 ? answers::kLockAcquired : answers::kLockOwnerDied;
  }
  return answers::kLockBusy;
}

// lock: spins `spin` rounds, then sleeps; kLockAcquired, kLockOwnerDied, kLockTimedOut, -errno,
// or kStopping on a worker being terminated (futex.h).
int Lock(napi_env env, int32_t* word, double timeoutMs, int64_t spin) {
  uint32_t self = ThisThread();
  int r = TryLock(word, self, false, false);
  if (r != answers::kLockBusy) return r;
  bool worker = OnWorkerThread();
  for (int64_t i = 0; i < spin; ++i) {
    CpuRelax();
    if (Load(word) == 0 && (r = TryLock(word, self, false, false)) != answers::kLockBusy) return r;
    if (worker && (i & 65535) == 65535 && StopRequested(env)) return answers::kStopping;
  }
  bool timed = timeoutMs >= 0 && std::isfinite(timeoutMs);
  timespec deadline = Deadline(timed ? timeoutMs : 0);
  bool slept = false;
  for (;;) {
    // After a sleep, the holder is looked at: a dead one is taken over.
    r = TryLock(word, self, slept, slept);
    if (r != answers::kLockBusy) return r;
    uint32_t c = Load(word);
    if (c == 0) continue;
    if ((c & kWaiters) == 0 && !Cas(word, &c, c | kWaiters)) continue;
    c |= kWaiters;
    if (timed && Passed(deadline)) return answers::kLockTimedOut;
    timespec wake = Deadline(kLivenessMs);
    if (timed && Before(deadline, wake)) wake = deadline;
    long rc = Futex(word, FUTEX_WAIT_BITSET, c, &wake, FUTEX_BITSET_MATCH_ANY);
    if (rc != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) return -errno;
    // A sleep lasts kLivenessMs at most, kStopLookMs too: a worker looks after each.
    static_assert(kLivenessMs <= kStopLookMs,
                  "a worker being terminated waits one liveness period");
    if (worker && StopRequested(env)) {
      // A wake from an unlock goes on to the next sleeper: this thread will not take the lock.
      if (rc == 0) Futex(word, FUTEX_WAKE, 1, nullptr, 0);
      return answers::kStopping;
    }
    slept = true;
  }
}

// unlock: 0, or -EPERM when this thread does not hold it.
int Unlock(int32_t* word) {
  uint32_t self = ThisThread();
  if ((Load(word) & kTidMask) != self) return -EPERM;
  uint32_t old = static_cast<uint32_t>(__atomic_exchange_n(word, 0, __ATOMIC_RELEASE));
  if ((old & kWaiters) != 0) Futex(word, FUTEX_WAKE, 1, nullptr, 0);
  return 0;
}

// mutexLock(handle, ab, byteOffset, timeoutMs (-1: forever), spin)
Napi::Value MutexLock(const Napi::CallbackInfo& info) {
  WordArgs args;
  Napi::Value early;
  if (!ReadWordArgs(info, kNoWaitersArg, &args, &early)) return early;
  double timeoutMs = info[3].As<Napi::Number>().DoubleValue();
  int64_t spin = info[4].As<Napi::Number>().Int64Value();
  return Napi::Number::New(info.Env(), Lock(info.Env(), args.word, timeoutMs, spin));
}

// mutexTryLock(handle, ab, byteOffset, contended): one attempt, the holder looked at.
Napi::Value MutexTryLock(const Napi::CallbackInfo& info) {
  WordArgs args;
  Napi::Value early;
  if (!ReadWordArgs(info, kNoWaitersArg, &args, &early)) return early;
  bool contended = info[3].ToBoolean().Value();
  return Napi::Number::New(info.Env(), TryLock(args.word, ThisThread(), contended, true));
}

// mutexUnlock(handle, ab, byteOffset)
Napi::Value MutexUnlock(const Napi::CallbackInfo& info) {
  WordArgs args;
  Napi::Value early;
  if (!ReadWordArgs(info, kNoWaitersArg, &args, &early)) return early;
  return Napi::Number::New(info.Env(), Unlock(args.word));
}

// threadGone(tid) -> true when no thread `tid` exists any more (or only its zombie): the same
// liveness check a sleeping locker makes, for the owner a RingBuffer record names (src/ring.ts).
Napi::Value ThreadGone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    ArgTypeError(env, "native: threadGone(tid) expects a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double tid = info[0].As<Napi::Number>().DoubleValue();
  // 0 and ids outside the mask name no thread a record or a word can hold.
  if (!(tid >= 1 && tid <= kTidMask)) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, Gone(static_cast<uint32_t>(tid)));
}

// threadId() -> this thread's id (gettid), what the word holds while this thread holds it
Napi::Value ThreadId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ThisThread());
}

}  // namespace

void InitMutex(Napi::Env env, Napi::Object exports) {
  exports.Set("mutexLock", Napi::Function::New(env, MutexLock, "mutexLock"));
  exports.Set("mutexTryLock", Napi::Function::New(env, MutexTryLock, "mutexTryLock"));
  exports.Set("mutexUnlock", Napi::Function::New(env, MutexUnlock, "mutexUnlock"));
  exports.Set("threadId", Napi::Function::New(env, ThreadId, "threadId"));
  exports.Set("threadGone", Napi::Function::New(env, ThreadGone, "threadGone"));
  // The word's layout and the sleepers' rhythm, for the lock-free paths of src/mutex.ts.
  Napi::Object c = exports.Get("constants").As<Napi::Object>();
  MMAN_EXPORT_CONSTANT(c, FUTEX_TID_MASK);
  MMAN_EXPORT_CONSTANT(c, FUTEX_WAITERS);
  c.Set("MUTEX_LIVENESS_MS", Napi::Number::New(env, kLivenessMs));
}

}  // namespace mman
