// The slot table and the handler only: no Node-API here (a signal handler may not call it).
// The entry points that register a mapping are with the other operations on a live mapping,
// in memory.cc.
//
// SIGBUS: reading a page of a file mapping past the end of the file (truncated by another
// process, say) raises SIGBUS, and Node installs no handler: the process dies. For mappings
// that opt in, this handler maps a zero page over the faulting page and returns, so the read
// completes with zeros; the fault is counted and the Mapping reports it. Everything else is
// passed to the handler that was installed before ours, or to the default action.
#include "guard.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace mman {

namespace {

// Lock-free: the handler only loads; register/unregister publish `start` last/first.
struct Slot {
  std::atomic<bool> taken{false};
  std::atomic<uintptr_t> start{0};  // 0: not in use
  std::atomic<uintptr_t> end{0};
  std::atomic<int> prot{PROT_READ};
  std::atomic<uint32_t> faults{0};
};

constexpr int kSlots = 16384;
Slot slots[kSlots];
struct sigaction previous;
std::once_flag installOnce;
uintptr_t pageMask = 0;

void OnSigbus(int sig, siginfo_t* info, void* context) {
  if (info != nullptr && info->si_code == BUS_ADRERR) {
    uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
    for (Slot& slot : slots) {
      uintptr_t start = slot.start.load(std::memory_order_acquire);
      if (start == 0 || addr < start || addr >= slot.end.load(std::memory_order_acquire)) continue;
      int savedErrno = errno;
      void* page = mmap(reinterpret_cast<void*>(addr & pageMask), ~pageMask + 1,
                        slot.prot.load(std::memory_order_relaxed),
                        MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      errno = savedErrno;
      if (page != MAP_FAILED) {
        slot.faults.fetch_add(1, std::memory_order_relaxed);
        return;  // the faulting access runs again, on the zero page
      }
      break;
    }
  }
  // Not ours: chain to whoever was there, or let the default action kill the process.
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(sig, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
             previous.sa_handler != nullptr) {
    previous.sa_handler(sig);
  } else {
    // Returning re-executes the access, which faults again and now takes the default action.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGBUS, &dfl, nullptr);
  }
}

void Install() {
  pageMask = ~(static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)) - 1);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSigbus;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  sigaction(SIGBUS, &action, &previous);
}

}  // namespace

int GuardRegister(uintptr_t start, size_t length, int prot, uint32_t faults) {
  std::call_once(installOnce, Install);
  for (int i = 0; i < kSlots; i++) {
    bool expected = false;
    if (!slots[i].taken.compare_exchange_strong(expected, true)) continue;
    slots[i].faults.store(faults, std::memory_order_relaxed);
    slots[i].prot.store(prot, std::memory_order_relaxed);
    slots[i].end.store(start + length, std::memory_order_release);
    slots[i].start.store(start, std::memory_order_release);
    return i;
  }
  return -1;
}

void GuardMove(int slot, uintptr_t start, size_t length) {
  slots[slot].start.store(0, std::memory_order_release);
  slots[slot].end.store(start + length, std::memory_order_release);
  slots[slot].start.store(start, std::memory_order_release);
}

void GuardUnregister(int slot) {
  slots[slot].start.store(0, std::memory_order_release);
  slots[slot].taken.store(false, std::memory_order_release);
}

uint32_t GuardFaults(int slot) {
  return slots[slot].faults.load(std::memory_order_relaxed);
}

}  // namespace mman
