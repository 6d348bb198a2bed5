// futex(2) across processes: FUTEX_WAIT_BITSET / FUTEX_WAKE without FUTEX_PRIVATE_FLAG, so
// the kernel keys the wait on the shared page (inode + offset), not on this process.
//
// wait() blocks the JS thread, after an optional bounded spin. waitAsync() hands the wait to
// a waiter thread of this env that sleeps in futex_waitv(2) on up to 127 words at once plus
// a private control word (bumped to add or cancel a wait), so no libuv threadpool thread is
// ever pinned. Results come back through one ThreadSafeFunction; each wait borrows its
// region's pages until then, so an unmap() meanwhile leaves them mapped, never a hole.
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "futex.h"

#include "answers.h"
#include "env.h"
#include "guard.h"
#include "mapping.h"

// Headers older than Linux 5.16 lack futex_waitv; the syscall number is the same everywhere.
#ifndef FUTEX_WAITV_MAX
#define FUTEX_WAITV_MAX 128
#define FUTEX_32 2
struct futex_waitv {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t __reserved;
};
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

namespace mman {

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  // No PAUSE: under a hypervisor it triggers pause-loop exits that cost far more than the spin.
  __asm__ __volatile__("" ::: "memory");
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

long Futex(void* addr, int op, uint32_t val, const timespec* ts, uint32_t val3) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, val3);
}

timespec Deadline(double timeoutMs) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double ns = static_cast<double>(now.tv_nsec) + std::fmod(timeoutMs, 1000.0) * 1e6;
  timespec t;
  t.tv_sec = now.tv_sec + static_cast<time_t>(timeoutMs / 1000.0) + static_cast<time_t>(ns / 1e9);
  t.tv_nsec = static_cast<long>(std::fmod(ns, 1e9));
  return t;
}

bool Passed(const timespec& deadline) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > deadline.tv_sec ||
         (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

bool Before(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

bool OnWorkerThread() {
  thread_local bool worker = syscall(SYS_gettid) != getpid();
  return worker;
}

bool StopRequested(napi_env env) {
  return !CanRunJs(env);
}

// The int32 at byteOffset of `ab`, checked to lie inside the live region, 4-byte aligned.
// Returns nullptr with a JS exception pending, or with *misaligned set (TS reports that one).
static int32_t* Word(Napi::Env env, Region* region, const Napi::Value& abValue,
                     const Napi::Value& offsetValue, bool* misaligned) {
  *misaligned = false;
  if (!abValue.IsArrayBuffer() || !offsetValue.IsNumber()) {
    ArgTypeError(env, "native: (handle, ArrayBuffer, byteOffset) expected")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  auto ab = abValue.As<Napi::ArrayBuffer>();
  double offset = offsetValue.As<Napi::Number>().DoubleValue();
  auto* data = static_cast<uint8_t*>(ab.Data());
  if (!region->open || data == nullptr || !(offset >= 0) ||
      offset + 4 > static_cast<double>(ab.ByteLength())) {
    ArgRangeError(env, "native: word outside the mapping").ThrowAsJavaScriptException();
    return nullptr;
  }
  uint8_t* addr = data + static_cast<size_t>(offset);
  const uint8_t* base = region->span->base;
  if (addr < base || addr + 4 > base + region->span->size) {
    ArgRangeError(env, "native: buffer is not over this mapping").ThrowAsJavaScriptException();
    return nullptr;
  }
  if (reinterpret_cast<uintptr_t>(addr) % 4 != 0) {
    *misaligned = true;
    return nullptr;
  }
  return reinterpret_cast<int32_t*>(addr);
}

// An optional waiter-count word: -1 (none) or a byte offset in the same ArrayBuffer.
static int32_t* OptionalWord(Napi::Env env, Region* region, const Napi::Value& ab,
                             const Napi::Value& offset, bool* ok) {
  *ok = true;
  if (!offset.IsNumber()) {
    *ok = false;
    ArgTypeError(env, "native: waitersOffset must be a number (-1 for none)")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  if (offset.As<Napi::Number>().DoubleValue() == -1) return nullptr;
  bool misaligned = false;
  int32_t* word = Word(env, region, ab, offset, &misaligned);
  if (word == nullptr) {
    *ok = false;
    if (misaligned) ArgRangeError(env, "native: misaligned").ThrowAsJavaScriptException();
  }
  return word;
}

bool ReadWordArgs(const Napi::CallbackInfo& info, size_t waitersArg, WordArgs* out,
                  Napi::Value* early) {
  Napi::Env env = info.Env();
  *early = env.Undefined();
  out->region = UnwrapRegion(env, info[0]);
  if (out->region == nullptr) return false;
  bool misaligned = false;
  out->word = Word(env, out->region, info[1], info[2], &misaligned);
  if (out->word == nullptr) {
    if (misaligned) *early = Napi::Number::New(env, answers::kMisaligned);
    return false;
  }
  if (waitersArg == kNoWaitersArg) return true;
  bool ok = true;
  out->waiters = OptionalWord(env, out->region, info[1], info[waitersArg], &ok);
  return ok;
}

namespace {

using answers::kMisaligned;
constexpr int kOk = answers::kWaitOk;
constexpr int kNotEqual = answers::kWaitNotEqual;
constexpr int kTimedOut = answers::kWaitTimedOut;
constexpr int kCancelled = answers::kWaitCancelled;
constexpr size_t kWaitsPerThread = FUTEX_WAITV_MAX - 1;  // one slot is the control word

// wait(handle, ab, byteOffset, expected, timeoutMs (-1: forever), spin, waitersOffset)
//   -> kWaitOk | kWaitNotEqual | kWaitTimedOut | -errno | kMisaligned | kStopping (answers.h)
Napi::Value Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WordArgs args;
  Napi::Value early;
  if (!ReadWordArgs(info, 6, &args, &early)) return early;
  int32_t* word = args.word;
  int32_t* waiters = args.waiters;
  int32_t expected = info[3].As<Napi::Number>().Int32Value();
  double timeoutMs = info[4].As<Napi::Number>().DoubleValue();
  int64_t spin = info[5].As<Napi::Number>().Int64Value();

  if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != expected) return Napi::Number::New(env, kNotEqual);
  // A worker sleeps in pieces, and gives up once it is being terminated (futex.h); a long spin
  // looks too.
  bool pieces = OnWorkerThread();
  for (int64_t i = 0; i < spin; ++i) {  // the other side usually answers within microseconds
    CpuRelax();
    if ((i & 1023) == 1023) {
      sched_yield();  // a peer waiting for this CPU gets it
      if (pieces && (i & 65535) == 65535 && StopRequested(env))
        return Napi::Number::New(env, answers::kStopping);
    }
    if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected) return Napi::Number::New(env, kOk);
  }
  if (timeoutMs == 0) return Napi::Number::New(env, kTimedOut);
  timespec deadline;
  bool timed = timeoutMs > 0 && std::isfinite(timeoutMs);
  if (timed) deadline = Deadline(timeoutMs);
  if (waiters != nullptr) __atomic_add_fetch(waiters, 1, __ATOMIC_SEQ_CST);
  int result;
  for (;;) {
    const timespec* until = timed ? &deadline : nullptr;
    timespec piece;
    if (pieces) {
      piece = Deadline(kStopLookMs);
      if (!timed || Before(piece, deadline)) until = &piece;
    }
    long rc = Futex(word, FUTEX_WAIT_BITSET, static_cast<uint32_t>(expected), until,
                    FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) {
      result = kOk;
      // Woken, but being terminated: nothing will act on the wake, so it goes on to the next
      // sleeper (a ring's commit wakes one reader; the one woken must not take it away).
      if (pieces && StopRequested(env)) {
        Futex(word, FUTEX_WAKE, 1, nullptr, 0);
        result = answers::kStopping;
      }
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      result = kOk;
      break;
    }  // changed after our first look: an event
    if (errno == ETIMEDOUT && until == &piece) {
      if (!StopRequested(env)) continue;
      result = answers::kStopping;
      break;
    }
    result = errno == ETIMEDOUT ? kTimedOut : -errno;
    break;
  }
  if (waiters != nullptr) __atomic_sub_fetch(waiters, 1, __ATOMIC_SEQ_CST);
  return Napi::Number::New(env, result);
}

// notify(handle, ab, byteOffset, count, waitersOffset) -> woken | -errno
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WordArgs args;
  Napi::Value early;
  if (!ReadWordArgs(info, 4, &args, &early)) return early;
  int32_t* word = args.word;
  int32_t* waiters = args.waiters;
  double countValue = info[3].As<Napi::Number>().DoubleValue();
  int count = countValue >= INT_MAX ? INT_MAX : static_cast<int>(countValue);
  if (waiters != nullptr) {
    // Pairs with the waiter's increment: either it sees our store, or we see its count.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(waiters, __ATOMIC_SEQ_CST) == 0) return Napi::Number::New(env, 0);
  }
  long rc = Futex(word, FUTEX_WAKE, static_cast<uint32_t>(count), nullptr, 0);
  return Napi::Number::New(env, rc < 0 ? -errno : static_cast<double>(rc));
}

}  // namespace

// Named (FutexEnv is AddonEnv's): the types of waitAsync.
// ---- waitAsync: waiter threads sleeping in futex_waitv ----

struct WaiterThread;

struct AsyncWait {
  explicit AsyncWait(Region* region) : borrow(region) {}
  uint64_t id = 0;
  Borrow borrow;  // the word's page stays mapped until the wait is delivered and deleted
  int32_t* word = nullptr;
  int32_t* waiters = nullptr;  // counted from registration to delivery (JS thread)
  int32_t expected = 0;
  bool timed = false;
  timespec deadline{};
  std::atomic<bool> cancelled{false};
  int result = kOk;
  Napi::FunctionReference callback;
  WaiterThread* thread = nullptr;  // the one that sleeps on it: a cancel wakes that one only
};

struct FutexEnv;
struct WaiterThread {
  FutexEnv* owner = nullptr;
  std::mutex mutex;
  std::vector<AsyncWait*> waits;  // guarded by mutex
  uint32_t control = 0;           // bumped (atomically) to make the thread look again
  bool stop = false;              // guarded by mutex
  std::thread thread;

  void Poke() {
    __atomic_add_fetch(&control, 1, __ATOMIC_SEQ_CST);
    Futex(&control, FUTEX_WAKE_PRIVATE, 1, nullptr, 0);
  }
  void Run();
};

void DeliverOnJsThread(Napi::Env env, Napi::Function, FutexEnv* state, void*);
using DeliveryFunction = Napi::TypedThreadSafeFunction<FutexEnv, void, DeliverOnJsThread>;

struct FutexEnv {
  DeliveryFunction tsfn;
  std::vector<std::unique_ptr<WaiterThread>> threads;
  std::unordered_map<uint64_t, AsyncWait*> byId;  // JS thread only
  uint64_t nextId = 1;
  std::mutex doneMutex;
  std::vector<AsyncWait*> done;  // guarded by doneMutex

  void Deliver(std::vector<AsyncWait*>& finished) {
    bool first;
    {
      std::lock_guard<std::mutex> lock(doneMutex);
      first = done.empty();
      done.insert(done.end(), finished.begin(), finished.end());
    }
    if (first) tsfn.NonBlockingCall();
  }
};

// Whether the kernel still sees `expected` at `word`: asked through the kernel, because
// this thread may not read memory the JS thread could be unmapping. EFAULT counts as changed.
bool StillExpected(AsyncWait* w) {
  timespec past{0, 0};
  long rc = Futex(w->word, FUTEX_WAIT_BITSET, static_cast<uint32_t>(w->expected), &past,
                  FUTEX_BITSET_MATCH_ANY);
  return rc != 0 && errno == ETIMEDOUT;
}

void WaiterThread::Run() {
  std::vector<futex_waitv> vector;
  std::vector<AsyncWait*> snapshot;
  std::vector<AsyncWait*> finished;
  std::unique_lock<std::mutex> lock(mutex);
  while (!stop) {
    vector.clear();
    snapshot.clear();
    uint32_t seen = __atomic_load_n(&control, __ATOMIC_SEQ_CST);
    vector.push_back(
        {seen, reinterpret_cast<uintptr_t>(&control), FUTEX_32 | FUTEX_PRIVATE_FLAG, 0});
    bool timed = false;
    bool cancelled = false;
    timespec deadline{};
    for (AsyncWait* w : waits) {
      // Read after `seen`: a cancel whose poke came before `seen` was read is seen here instead.
      cancelled = cancelled || w->cancelled.load();
      snapshot.push_back(w);
      vector.push_back(
          {static_cast<uint32_t>(w->expected), reinterpret_cast<uintptr_t>(w->word), FUTEX_32, 0});
      if (w->timed && (!timed || Before(w->deadline, deadline))) {
        deadline = w->deadline;
        timed = true;
      }
    }
    lock.unlock();
    long rc = cancelled ? 0
                        : syscall(SYS_futex_waitv, vector.data(), vector.size(), 0,
                                  timed ? &deadline : nullptr, CLOCK_MONOTONIC);
    int err = rc < 0 ? errno : 0;
    if (err == ENOSYS && snapshot.empty()) {
      // A kernel before 5.16: every wait fails below; sleep until the next one comes.
      Futex(&control, FUTEX_WAIT_PRIVATE, seen, nullptr, 0);
    }
    lock.lock();
    finished.clear();
    for (size_t i = 0; i < snapshot.size(); ++i) {
      AsyncWait* w = snapshot[i];
      bool over = false;
      if (err == ENOSYS) {
        w->result = -ENOSYS;
        over = true;
      } else if (w->cancelled.load()) {
        w->result = kCancelled;
        over = true;
      } else if (rc == static_cast<long>(i + 1)) {
        w->result = kOk;
        over = true;
      } else if ((err == EAGAIN || err == EFAULT) && !StillExpected(w)) {
        w->result = kOk;  // the word changed since waitAsync looked: that is the event
        over = true;
      } else if (w->timed && Passed(w->deadline)) {
        w->result = kTimedOut;
        over = true;
      }
      if (over) finished.push_back(w);
    }
    if (!finished.empty()) {
      waits.erase(std::remove_if(waits.begin(), waits.end(),
                                 [&](AsyncWait* w) {
                                   return std::find(finished.begin(), finished.end(), w) !=
                                          finished.end();
                                 }),
                  waits.end());
      lock.unlock();
      owner->Deliver(finished);
      lock.lock();
    }
  }
}

// Whether the waiter count may still be written: protect() (on this thread, while the wait
// slept) may have taken the write permission away, and a write would be SIGSEGV. Then the
// count stays one too high, which costs a notify() one needless FUTEX_WAKE; the next call on
// the mapping says it is read-only.
bool Writable(const Span* span, const int32_t* word) {
  int prot = GuardProtAt(span->faultSlot, reinterpret_cast<uintptr_t>(word));
  return prot < 0 || (prot & PROT_WRITE) != 0;
}

// Runs on the JS thread: settles every finished wait and lets go of its region.
void DeliverOnJsThread(Napi::Env env, Napi::Function, FutexEnv* state, void*) {
  if (env == nullptr || state == nullptr) return;  // the env is going away
  std::vector<AsyncWait*> batch;
  {
    std::lock_guard<std::mutex> lock(state->doneMutex);
    batch.swap(state->done);
  }
  for (AsyncWait* w : batch) {
    state->byId.erase(w->id);
    if (w->waiters != nullptr && Writable(w->borrow.span(), w->waiters))
      __atomic_sub_fetch(w->waiters, 1, __ATOMIC_SEQ_CST);
  }
  if (state->byId.empty()) state->tsfn.Unref(env);
  for (AsyncWait* w : batch) {
    Napi::HandleScope scope(env);
    try {
      w->callback.Call({Napi::Number::New(env, w->result)});
    } catch (const Napi::Error& e) {
      // A throwing callback must not strand the rest of the batch.
    }
    delete w;
  }
}

// The env is shutting down (worker exit, process exit): joins the threads, then drops the
// waits never delivered, giving back what they borrowed. Their callbacks never run.
void StopWaiters(FutexEnv* state) {
  for (auto& t : state->threads) {
    {
      std::lock_guard<std::mutex> lock(t->mutex);
      t->stop = true;
    }
    t->Poke();
    if (t->thread.joinable()) t->thread.join();
  }
  state->tsfn.Release();
  {
    std::lock_guard<std::mutex> lock(state->doneMutex);
    state->done.clear();  // each is in byId too
  }
  for (auto& entry : state->byId) delete entry.second;
  state->byId.clear();
}

FutexEnv* StateOf(Napi::Env env) {
  AddonEnv* addon = AddonEnvOf(env);
  if (addon->futex != nullptr) return addon->futex;
  auto* state = new FutexEnv();
  state->tsfn = DeliveryFunction::New(env, "mman.waitAsync", 0, 1, state);
  state->tsfn.Unref(env);
  addon->futex = state;  // deleted with the AddonEnv, after this hook ran
  env.AddCleanupHook([state] { StopWaiters(state); });
  return state;
}

// waitAsyncStart(handle, ab, byteOffset, expected, timeoutMs (-1: forever), waitersOffset,
//                callback(result)) -> id | kMisaligned (answers.h)
Napi::Value WaitAsyncStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WordArgs args;
  Napi::Value early;
  if (!ReadWordArgs(info, 5, &args, &early)) return early;
  Region* region = args.region;
  int32_t* word = args.word;
  int32_t* waiters = args.waiters;
  if (!info[6].IsFunction()) {
    NAPI_THROW(ArgTypeError(env, "native: callback expected"), env.Undefined());
  }
  FutexEnv* state = StateOf(env);
  auto* w = new AsyncWait(region);
  w->id = state->nextId++;
  w->word = word;
  w->waiters = waiters;
  w->expected = info[3].As<Napi::Number>().Int32Value();
  double timeoutMs = info[4].As<Napi::Number>().DoubleValue();
  if (timeoutMs >= 0 && std::isfinite(timeoutMs)) {
    w->timed = true;
    w->deadline = Deadline(timeoutMs);
  }
  w->callback = Napi::Persistent(info[6].As<Napi::Function>());
  if (waiters != nullptr) __atomic_add_fetch(waiters, 1, __ATOMIC_SEQ_CST);
  if (state->byId.empty()) state->tsfn.Ref(env);
  state->byId.emplace(w->id, w);

  WaiterThread* target = nullptr;
  for (auto& t : state->threads) {
    std::lock_guard<std::mutex> lock(t->mutex);
    if (t->waits.size() < kWaitsPerThread) {
      w->thread = t.get();
      t->waits.push_back(w);
      target = t.get();
      break;
    }
  }
  if (target == nullptr) {
    auto t = std::make_unique<WaiterThread>();
    t->owner = state;
    w->thread = t.get();
    t->waits.push_back(w);
    target = t.get();
    t->thread = std::thread([raw = target] { raw->Run(); });
    state->threads.push_back(std::move(t));
  }
  target->Poke();
  return Napi::Number::New(env, static_cast<double>(w->id));
}

// waitAsyncCancel(id) -> true if it was pending. Its callback still runs, with 3 (cancelled),
// once the waiter thread has dropped it.
Napi::Value WaitAsyncCancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FutexEnv* state = AddonEnvOf(env)->futex;
  if (state == nullptr) return Napi::Boolean::New(env, false);
  auto it = state->byId.find(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
  if (it == state->byId.end()) return Napi::Boolean::New(env, false);
  it->second->cancelled.store(true);
  it->second->thread->Poke();  // threads live as long as the env, so this one still does
  return Napi::Boolean::New(env, true);
}

// waitAsyncStats() -> { pending, threads }: for tests, to see that slots are given back.
Napi::Value WaitAsyncStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FutexEnv* state = AddonEnvOf(env)->futex;
  Napi::Object stats = Napi::Object::New(env);
  size_t inThreads = 0;
  if (state != nullptr) {
    for (auto& t : state->threads) {
      std::lock_guard<std::mutex> lock(t->mutex);
      inThreads += t->waits.size();
    }
  }
  stats.Set("pending", Napi::Number::New(env, state ? static_cast<double>(state->byId.size()) : 0));
  stats.Set("sleeping", Napi::Number::New(env, static_cast<double>(inThreads)));
  stats.Set("threads",
            Napi::Number::New(env, state ? static_cast<double>(state->threads.size()) : 0));
  return stats;
}

void DestroyFutexEnv(FutexEnv* futex) {
  delete futex;
}

void InitFutex(Napi::Env env, Napi::Object exports, Napi::Object tools) {
  exports.Set("wait", Napi::Function::New(env, Wait, "wait"));
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
  exports.Set("waitAsyncStart", Napi::Function::New(env, WaitAsyncStart, "waitAsyncStart"));
  exports.Set("waitAsyncCancel", Napi::Function::New(env, WaitAsyncCancel, "waitAsyncCancel"));
  tools.Set("waitAsyncStats", Napi::Function::New(env, WaitAsyncStats, "waitAsyncStats"));
}

}  // namespace mman
