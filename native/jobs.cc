// The jobs of jobs.h: one thread each, results back through one ThreadSafeFunction per
// environment, everything stopped by one cleanup hook when the environment goes away.
#include "jobs.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "env.h"

namespace mman {

using JobsFunction = Napi::TypedThreadSafeFunction<JobsEnv, void, DeliverJobs>;

void ThreadJob::Cancel() {
  uint64_t one = 1;
  if (write(cancelFd_, &one, sizeof one) < 0) {
    // An eventfd write fails only on overflow, which these few writes cannot cause.
  }
}

struct JobsEnv {
  JobsFunction tsfn;
  double nextId = 1;
  std::vector<ThreadJob*> live;  // started, not yet delivered (JS thread only)
  std::mutex doneMutex;
  std::vector<ThreadJob*> done;  // Run() returned; guarded by doneMutex

  void Finished(ThreadJob* job) {  // on the job's thread
    bool first;
    {
      std::lock_guard<std::mutex> lock(doneMutex);
      first = done.empty();
      done.push_back(job);
    }
    if (first) tsfn.NonBlockingCall();  // napi_closing once torn down: the hook has them all
  }

  void Forget(Napi::Env env, ThreadJob* job) {
    live.erase(std::find(live.begin(), live.end(), job));
    if (live.empty()) tsfn.Unref(env);
  }

  // The cleanup hook: every job is told to stop, waited for, and let go of.
  void Stop() {
    for (ThreadJob* job : live) job->Cancel();
    for (ThreadJob* job : live)
      if (job->thread_.joinable()) job->thread_.join();
    for (ThreadJob* job : live) {
      job->Abandon();
      delete job;
    }
    live.clear();
    {
      std::lock_guard<std::mutex> lock(doneMutex);
      done.clear();  // each was in `live` too
    }
    tsfn.Release();
  }
};

void DeliverJobs(Napi::Env env, Napi::Function, JobsEnv* state, void*) {
  if (env == nullptr || state == nullptr) return;  // the function is being torn down
  std::vector<ThreadJob*> batch;
  {
    std::lock_guard<std::mutex> lock(state->doneMutex);
    batch.swap(state->done);
  }
  for (ThreadJob* job : batch) {
    job->thread_.join();  // it has returned from Run(), or is about to
    state->Forget(env, job);
    Napi::HandleScope scope(env);
    try {
      job->Deliver(env);
    } catch (const Napi::Error&) {
      // The environment started going away under this very call: nothing to settle.
    }
    delete job;
  }
}

namespace {

JobsEnv* JobsOf(Napi::Env env) {
  AddonEnv* addon = AddonEnvOf(env);
  if (addon->jobs != nullptr) return addon->jobs;
  auto* state = new JobsEnv();
  state->tsfn = JobsFunction::New(env, "mman.job", 0, 1, state);
  state->tsfn.Unref(env);
  addon->jobs = state;  // freed with the AddonEnv, after the hook below ran
  // Added after the function: hooks run in reverse, so this one runs while it still exists.
  env.AddCleanupHook([state] { state->Stop(); });
  return state;
}

}  // namespace

double StartThreadJob(Napi::Env env, ThreadJob* job, const char** syscall) {
  JobsEnv* state = JobsOf(env);
  job->cancelFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (job->cancelFd_ < 0) {
    int err = errno;
    job->Abandon();
    delete job;
    *syscall = "eventfd";
    return -err;
  }
  job->id_ = state->nextId++;
  if (state->live.empty()) state->tsfn.Ref(env);
  state->live.push_back(job);
  int cancelFd = job->cancelFd_;
  try {
    job->thread_ = std::thread([state, job, cancelFd] {
      job->Run(cancelFd);
      state->Finished(job);
    });
  } catch (const std::system_error& e) {
    state->Forget(env, job);
    job->Abandon();
    delete job;
    *syscall = "pthread_create";
    return -(e.code().value() > 0 ? e.code().value() : EAGAIN);
  }
  return job->id_;
}

bool CancelThreadJob(Napi::Env env, double id) {
  JobsEnv* state = AddonEnvOf(env)->jobs;
  if (state == nullptr) return false;
  for (ThreadJob* job : state->live) {
    if (job->id_ != id) continue;
    job->Cancel();
    return true;
  }
  return false;
}

ThreadJob::~ThreadJob() {
  if (cancelFd_ >= 0) close(cancelFd_);
}

void DestroyJobsEnv(JobsEnv* jobs) {
  delete jobs;
}

void PoolJob::OnWorkComplete(Napi::Env env, napi_status status) {
  if (status == napi_ok && CanRunJs(env)) {
    Napi::HandleScope scope(env);
    try {
      Deliver(env);
    } catch (const Napi::Error&) {
      Abandon();  // the environment started going away under this very call
    }
  } else {
    Abandon();
  }
  Destroy();
}

Napi::Value JobPromise::Make(Napi::Env env) {
  if (!promise_.IsEmpty()) return promise_;
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred_, &promise), Napi::Value());
  promise_ = Napi::Value(env, promise);
  return promise_;
}

void JobPromise::Resolve(Napi::Env env, napi_value value) {
  if (deferred_ == nullptr) return;
  napi_resolve_deferred(env, deferred_, value);
  deferred_ = nullptr;
}

}  // namespace mman
