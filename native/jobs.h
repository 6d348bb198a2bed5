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
// worker is terminated, so a wait that never ends hangs both. A job's thread polls the
// environment's cancel descriptor beside what it waits for; when the environment goes away
// (worker terminated or exiting, process exiting) one cleanup hook signals that descriptor,
// joins every job's thread, and lets go of what each holds (Abandon()), running no JavaScript.
#pragma once

#include <napi.h>

#include <atomic>
#include <thread>

namespace mman {

struct JobsEnv;
void DestroyJobsEnv(JobsEnv* jobs);  // jobs.cc

void DeliverJobs(Napi::Env env, Napi::Function, JobsEnv* state, void*);

class ThreadJob {
 public:
  virtual ~ThreadJob() = default;

  // On the job's thread. `cancelFd` becomes readable (POLLIN) when the environment is going
  // away: poll it beside whatever the job waits for, and return soon after it fires.
  virtual void Run(int cancelFd) = 0;
  // On the JavaScript thread, after Run() returned: settle the promise, hand over results.
  virtual void Deliver(Napi::Env env) = 0;
  // Instead of Deliver(), when the environment went away first: release, run no JavaScript.
  virtual void Abandon() = 0;

 private:
  friend struct JobsEnv;
  friend void StartThreadJob(Napi::Env env, ThreadJob* job);
  friend void DeliverJobs(Napi::Env env, Napi::Function, JobsEnv* state, void*);
  std::thread thread_;
};

// Starts `job` on a thread of its own; the environment owns it from now on (deleted after
// Deliver() or Abandon()). While any job is pending, the event loop stays alive.
void StartThreadJob(Napi::Env env, ThreadJob* job);

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

// A promise for a job to settle in Deliver(): made on the JS thread, settled once.
class JobPromise {
 public:
  explicit JobPromise(Napi::Env env);
  Napi::Value Value() const { return promise_; }
  // False if the environment went away first (then nothing will ever see `value`).
  bool Resolve(Napi::Env env, napi_value value);

 private:
  napi_deferred deferred_ = nullptr;
  Napi::Value promise_;
};

}  // namespace mman
