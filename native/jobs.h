// The addon's work off the JavaScript thread, in two kinds that end the same way: on the JS
// thread, Deliver() settles the promise if the environment can still run JavaScript, else
// Abandon() only lets go of what the job holds (a borrow, a descriptor it opened). Nothing
// runs JavaScript, or throws, while a thread's environment is being torn down.
//
// PoolJob: bounded work (a populate chunk, an msync, an open) on libuv's threadpool. Node
// completes it even while a worker is being terminated, before the environment's cleanup
// hooks run; the completion finds JavaScript gone and abandons.
//
// ThreadJob: work that may wait for a long time (for a peer on a socket) runs on a thread of
// the addon's own, never on libuv's threadpool: a threadpool thread held by a wait starves fs and
// crypto, and Node joins those threads at process.exit() and waits for their work when a
// worker is terminated, so a wait that never ends hangs both. A job's thread polls its cancel
// descriptor beside what it waits for. It is signalled by CancelThreadJob() (the socket the job
// waits on was closed in JavaScript), and, for every job, by the one cleanup hook that runs
// when the environment goes away (worker terminated or exiting, process exiting), which then
// joins every job's thread and lets go of what each holds (Abandon()), running no JavaScript.
#pragma once

#include <napi.h>

#include <thread>

namespace mman {

struct JobsEnv;
void DestroyJobsEnv(JobsEnv* jobs);  // jobs.cc

void DeliverJobs(Napi::Env env, Napi::Function, JobsEnv* state, void*);

class ThreadJob {
 public:
  virtual ~ThreadJob();

  // On the job's thread. `cancelFd` becomes readable (POLLIN) when the job is cancelled or the
  // environment is going away: poll it beside whatever the job waits for, and return soon
  // after it fires.
  virtual void Run(int cancelFd) = 0;
  // On the JavaScript thread, after Run() returned: settle the promise, hand over results.
  virtual void Deliver(Napi::Env env) = 0;
  // Instead of Deliver(), when the environment went away first: release, run no JavaScript.
  virtual void Abandon() = 0;

 private:
  friend struct JobsEnv;
  friend double StartThreadJob(Napi::Env env, ThreadJob* job, const char** syscall);
  friend bool CancelThreadJob(Napi::Env env, double id);
  friend void DeliverJobs(Napi::Env env, Napi::Function, JobsEnv* state, void*);
  void Cancel();
  std::thread thread_;
  int cancelFd_ = -1;  // an eventfd: readable once cancelled
  double id_ = 0;
};

// Starts `job` on a thread of its own; the environment owns it from now on (deleted after
// Deliver() or Abandon()). While any job is pending, the event loop stays alive. Returns its
// id for CancelThreadJob() (ids start at 1), or -errno if it could not start (and is deleted),
// with `*syscall` set to what failed: "eventfd" (EMFILE, ENFILE, ENOMEM) or "pthread_create"
// (EAGAIN when no thread can be made).
double StartThreadJob(Napi::Env env, ThreadJob* job, const char** syscall);

// Signals the job with this id, if it is still pending: its Run() returns soon, and
// Deliver() runs as usual. False if there is none.
bool CancelThreadJob(Napi::Env env, double id);

// Bounded work on libuv's threadpool (see above). Queue() it; it deletes itself.
class PoolJob : public Napi::AsyncWorker {
 public:
  explicit PoolJob(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name) {}

 protected:
  virtual void Deliver(Napi::Env env) = 0;
  virtual void Abandon() = 0;

 private:
  void OnWorkComplete(Napi::Env env, napi_status status) final;
  void OnOK() final {}
};

// A promise for a job to settle in Deliver(): made on the JS thread, settled once. Made with
// the job (the first constructor) or once it has started (Make()): only a settled promise
// frees its deferred.
class JobPromise {
 public:
  explicit JobPromise(Napi::Env env) { Make(env); }
  JobPromise() = default;
  // Makes the promise (once) and returns it.
  Napi::Value Make(Napi::Env env);
  Napi::Value Value() const { return promise_; }
  // Settles the promise with `value` (once; later calls do nothing).
  void Resolve(Napi::Env env, napi_value value);

 private:
  napi_deferred deferred_ = nullptr;
  Napi::Value promise_;
};

}  // namespace mman
