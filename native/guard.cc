// The fault table and its two signal handlers: no Node-API here (a handler may not call it),
// no lock and no allocation in the handlers. The entry points that use it are in lifetime.cc
// (every span registers) and memory.cc (guard(), the counts).
//
// SIGBUS: touching a page of a file mapping that no file page backs (past the end of a file
// truncated under the mapping, or a page its filesystem could not allocate: full, or failing)
// raises SIGBUS, and Node installs no handler: the process dies. For a guarded mapping, this
// handler maps a zero page over the faulting page and returns, so the access completes on
// zeros; the fault is counted (truncation or lost page: the file's size tells which) and the
// Mapping reports it. For any other mapping of ours it says on stderr what happened first.
//
// SIGSEGV: an access a mapping's protection forbids (a write to read-only memory, most often)
// kills the process; for a fault inside one of our mappings the handler says so on stderr.
//
// Either way, whatever is not ours (or not recovered) goes to the handler installed before
// ours (Node's WebAssembly trap handler, a crash reporter, a sanitizer), or to the default
// action.
#include "guard.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

namespace mman {

namespace {

constexpr int kNotGuarded = -1;     // Slot::fd: SIGBUS in the slot is named, not survived
constexpr int kGuardedNoFile = -2;  // survived, counted as truncation: the mapping was unmapped

// Lock-free for the handlers, which only load: registration publishes `start` last and
// unregistration clears it first.
struct Slot {
  std::atomic<uintptr_t> start{0};  // 0: not in use
  std::atomic<uintptr_t> end{0};
  std::atomic<int> prot{0};
  std::atomic<int> fd{kNotGuarded};  // >= 0: guarded, the file's descriptor to ask
  std::atomic<uint64_t> fileOffset{0};
  std::atomic<uint32_t> truncated{0};
  std::atomic<uint32_t> lost{0};
  std::atomic<uint64_t> lostFirst{UINT64_MAX};
  std::atomic<uint64_t> lostEnd{0};
  std::atomic<int> lostErrno{0};
  std::atomic<uintptr_t> granule{0};  // the size of its pages: a zero page replaces one whole
  std::atomic<bool> mixed{false};     // protect() changed part of it: `prot` is the union, and a
                                      // page's own protection is the kernel's to say
  char label[112] = {};
};

constexpr int kChunkSlots = 4096;
constexpr int kChunks = kGuardSlots / kChunkSlots;
std::atomic<Slot*> chunks[kChunks];
std::atomic<int> highWater{0};  // slots [0, highWater) may be in use
// Registration and unregistration take turns; never taken in a handler. A spin lock: it is
// held for a few stores, on every map and unmap, and almost never contended.
class SpinLock {
 public:
  void lock() {
    while (held_.exchange(true, std::memory_order_acquire))
      while (held_.load(std::memory_order_relaxed)) sched_yield();
  }
  void unlock() { held_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> held_{false};
};
SpinLock tableLock;
std::vector<int>* freeSlots = new std::vector<int>();  // never destroyed: used at exit too

struct sigaction previousBus;
struct sigaction previousSegv;
std::once_flag installOnce;
std::atomic<bool> installed{false};
std::mutex reinstallLock;  // GuardReinstall from several threads' environments
uintptr_t pageMask = 0;

Slot* At(int index) {
  return &chunks[index / kChunkSlots].load(std::memory_order_acquire)[index % kChunkSlots];
}

Slot* Find(uintptr_t addr) {
  int high = highWater.load(std::memory_order_acquire);
  for (int c = 0; c * kChunkSlots < high; ++c) {
    Slot* chunk = chunks[c].load(std::memory_order_acquire);
    if (chunk == nullptr) break;
    for (int i = 0; i < kChunkSlots && c * kChunkSlots + i < high; ++i) {
      Slot& slot = chunk[i];
      uintptr_t start = slot.start.load(std::memory_order_acquire);
      if (start != 0 && addr >= start && addr < slot.end.load(std::memory_order_acquire))
        return &slot;
    }
  }
  return nullptr;
}

}  // namespace

int VmaAt(uintptr_t addr, uintptr_t* startOut, uintptr_t* endOut) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buffer[4096];
  char line[256];
  size_t used = 0;
  int prot = -1;
  ssize_t n;
  while (prot < 0 && (n = read(fd, buffer, sizeof buffer)) > 0) {
    for (ssize_t i = 0; i < n && prot < 0; ++i) {
      if (buffer[i] != '\n') {
        if (used < sizeof line - 1) line[used++] = buffer[i];
        continue;
      }
      line[used] = '\0';
      used = 0;
      // "start-end perms ...", in hex
      uintptr_t lo = 0, hi = 0;
      const char* c = line;
      auto hex = [&c](uintptr_t* out) {
        for (; *c != '\0'; ++c) {
          int d = *c >= '0' && *c <= '9' ? *c - '0' : *c >= 'a' && *c <= 'f' ? *c - 'a' + 10 : -1;
          if (d < 0) break;
          *out = (*out << 4) | static_cast<uintptr_t>(d);
        }
      };
      hex(&lo);
      if (*c++ != '-') continue;
      hex(&hi);
      if (*c++ != ' ' || addr < lo || addr >= hi) continue;
      prot = (c[0] == 'r' ? PROT_READ : 0) | (c[1] == 'w' ? PROT_WRITE : 0) |
             (c[2] == 'x' ? PROT_EXEC : 0);
      if (startOut != nullptr) *startOut = lo;
      if (endOut != nullptr) *endOut = hi;
    }
  }
  close(fd);
  return prot;
}

namespace {

// A slot's protection at `addr`: the slot's own, unless protect() changed part of it.
int SlotProtAt(const Slot& slot, uintptr_t addr) {
  int prot = slot.prot.load(std::memory_order_relaxed);
  if (!slot.mixed.load(std::memory_order_relaxed)) return prot;
  int actual = VmaAt(addr, nullptr, nullptr);
  return actual >= 0 ? actual : prot;
}

// ---- messages, built without malloc or stdio ----

struct Line {
  char text[640];
  size_t length = 0;
  void Add(const char* s) {
    while (*s != '\0' && length < sizeof text - 1) text[length++] = *s++;
  }
  void Hex(uintptr_t value) {
    char digits[19] = "0x";
    int n = 2;
    char reversed[16];
    int r = 0;
    do reversed[r++] = "0123456789abcdef"[value & 15];
    while ((value >>= 4) != 0);
    while (r > 0) digits[n++] = reversed[--r];
    digits[n] = '\0';
    Add(digits);
  }
  void Prot(int prot) {
    if (prot == PROT_NONE) return Add("PROT_NONE");
    bool first = true;
    for (auto [bit, name] : {std::pair<int, const char*>{PROT_READ, "PROT_READ"},
                             {PROT_WRITE, "PROT_WRITE"},
                             {PROT_EXEC, "PROT_EXEC"}}) {
      if ((prot & bit) == 0) continue;
      if (!first) Add(" | ");
      Add(name);
      first = false;
    }
  }
  void Mapping(const Slot& slot) {
    Add("the mman mapping ");
    if (slot.label[0] != '\0') {
      Add("of '");
      Add(slot.label);
      Add("' ");
    }
    Add("at ");
    Hex(slot.start.load(std::memory_order_relaxed));
    Add("-");
    Hex(slot.end.load(std::memory_order_relaxed));
  }
  void Print() {
    Add("\n");
    ssize_t ignored = write(STDERR_FILENO, text, length);
    (void)ignored;
  }
};

void SayBus(const Slot& slot, uintptr_t addr, int failed) {
  Line line;
  line.Add("mman: SIGBUS at ");
  line.Hex(addr);
  line.Add(" in ");
  line.Mapping(slot);
  line.Add(
      ": no file page backs it (the file was truncated under the mapping, or its filesystem "
      "is full or failed). ");
  if (slot.fd.load(std::memory_order_relaxed) == kNotGuarded) {
    line.Add(
        "The process dies; map the file with { guard: true } to survive this, or reserve "
        "its space first (mapFile with create: true, SharedMemory.create).");
  } else {
    line.Add("The mapping is guarded, but the guard could not map zero pages in its place (");
    line.Add(failed == ENOMEM ? "ENOMEM: out of memory areas, see vm.max_map_count"
                              : "mmap failed");
    line.Add("). The process dies.");
  }
  line.Print();
}

void SaySegv(const Slot& slot, uintptr_t addr) {
  int prot = SlotProtAt(slot, addr);
  Line line;
  line.Add("mman: SIGSEGV at ");
  line.Hex(addr);
  line.Add(" in ");
  line.Mapping(slot);
  line.Add(" (");
  line.Prot(prot);
  line.Add(")");
  if ((prot & PROT_READ) != 0 && (prot & PROT_WRITE) == 0)
    line.Add(
        ": a write to read-only memory. The process dies; map it writable ('r+' shares the "
        "writes with the file, 'copy' keeps them private) to write to it.");
  else
    line.Add(": an access its protection does not allow. The process dies.");
  line.Print();
}

// ---- the handlers ----

// A fault in an mman mapping that the guard cannot survive ends the process with the signal's
// default action, after its one line on stderr: chaining to a handler that returns (libuv's,
// for a JavaScript process.on('SIGSEGV') listener) would run the access again, fault again
// and print the line for ever.
void Die(int sig, siginfo_t* info) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, nullptr);
  if (info == nullptr || info->si_code <= 0) raise(sig);
}

void Chain(const struct sigaction& previous, int sig, siginfo_t* info, void* context) {
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(sig, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
             previous.sa_handler != nullptr) {
    previous.sa_handler(sig);
  } else {
    // Returning re-executes the access, which faults again and now takes the default action. A
    // signal sent by kill() or raise() (si_code <= 0) re-executes nothing: send it again.
    Die(sig, info);
  }
}

// A guarded slot's page holding `addr` could not be read: zero pages take its place, and the
// access runs again, on zeros. True if they did. Every page that would fault the same way goes
// at once, so that a reader walking a truncated file costs two memory areas, not two per page
// (vm.max_map_count): past the end of the file, everything from the end to the slot's end; in
// a hole of a file whose filesystem cannot back it, the rest of that hole (SEEK_DATA says
// where data starts again). A hugetlbfs mapping is replaced in whole huge pages: the kernel
// splits such a mapping only at their boundaries.
bool Recover(Slot& slot, uintptr_t addr, int* failed) {
  int fd = slot.fd.load(std::memory_order_acquire);
  if (fd == kNotGuarded) return false;
  uintptr_t granule = slot.granule.load(std::memory_order_relaxed);
  uintptr_t start = slot.start.load(std::memory_order_relaxed);
  uintptr_t end = slot.end.load(std::memory_order_relaxed);
  uintptr_t page = addr & ~(granule - 1);
  uint64_t fileOffset = slot.fileOffset.load(std::memory_order_relaxed);
  uint64_t offset = fileOffset + (page - start);
  auto roundUp = [granule](uint64_t n) {
    return (n + granule - 1) & ~static_cast<uint64_t>(granule - 1);
  };
  // No file to ask (the mapping was unmapped, and a view kept reads on): a truncation, page by
  // page.
  struct stat st;
  bool truncated =
      fd == kGuardedNoFile || fstat(fd, &st) != 0 || offset >= static_cast<uint64_t>(st.st_size);
  uintptr_t from = page;
  uintptr_t to = page + granule;
  if (truncated && fd != kGuardedNoFile) {
    uint64_t eof = roundUp(static_cast<uint64_t>(st.st_size));  // the first whole page past the end
    if (eof > fileOffset)
      from = std::max(start, std::min(page, start + (eof - fileOffset)));
    else
      from = start;
    to = end;
  } else if (!truncated) {
    off_t data = lseek(fd, static_cast<off_t>(offset + granule), SEEK_DATA);
    uint64_t holeEnd = data < 0
                           ? roundUp(static_cast<uint64_t>(st.st_size))  // ENXIO: no data after
                           : static_cast<uint64_t>(data) & ~static_cast<uint64_t>(granule - 1);
    if (holeEnd > offset + granule) to = std::min<uint64_t>(end, start + (holeEnd - fileOffset));
  }
  void* zero = mmap(reinterpret_cast<void*>(from), to - from, SlotProtAt(slot, page),
                    MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (zero == MAP_FAILED) {
    *failed = errno;
    return false;
  }
  uint32_t pages = static_cast<uint32_t>((to - from) / granule);
  if (truncated) {
    slot.truncated.fetch_add(pages, std::memory_order_relaxed);
    return true;
  }
  // Inside the file: the page could not be backed. No space left, or an I/O error.
  struct statfs fs;
  bool full = fstatfs(fd, &fs) == 0 && (fs.f_bavail == 0 || fs.f_bfree == 0);
  slot.lostErrno.store(full ? ENOSPC : EIO, std::memory_order_relaxed);
  uint64_t firstLost = fileOffset + (from - start);
  uint64_t first = slot.lostFirst.load(std::memory_order_relaxed);
  while (firstLost < first && !slot.lostFirst.compare_exchange_weak(first, firstLost)) {
  }
  uint64_t endLost = fileOffset + (to - start);
  uint64_t last = slot.lostEnd.load(std::memory_order_relaxed);
  while (endLost > last && !slot.lostEnd.compare_exchange_weak(last, endLost)) {
  }
  slot.lost.fetch_add(pages, std::memory_order_release);
  return true;
}

// si_addr means something only for a fault the kernel raised (si_code > 0), not for kill().
void OnSigbus(int sig, siginfo_t* info, void* context) {
  int savedErrno = errno;
  if (info != nullptr && info->si_code > 0) {
    uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
    if (Slot* slot = Find(addr)) {
      int failed = 0;
      if (info->si_code == BUS_ADRERR && Recover(*slot, addr, &failed)) {
        errno = savedErrno;
        return;  // the faulting access runs again, on the zero page
      }
      SayBus(*slot, addr, failed);
      Die(sig, info);
      return;
    }
  }
  errno = savedErrno;
  Chain(previousBus, sig, info, context);
}

void OnSigsegv(int sig, siginfo_t* info, void* context) {
  int savedErrno = errno;
  if (info != nullptr && info->si_code > 0) {
    if (Slot* slot = Find(reinterpret_cast<uintptr_t>(info->si_addr))) {
      SaySegv(*slot, reinterpret_cast<uintptr_t>(info->si_addr));
      Die(sig, info);
      return;
    }
  }
  errno = savedErrno;
  Chain(previousSegv, sig, info, context);
}

struct sigaction OurAction(void (*handler)(int, siginfo_t*, void*)) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  action.sa_sigaction = handler;
  return action;
}

void Install() {
  pageMask = ~(static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)) - 1);
  struct sigaction bus = OurAction(OnSigbus);
  sigaction(SIGBUS, &bus, &previousBus);
  struct sigaction segv = OurAction(OnSigsegv);
  sigaction(SIGSEGV, &segv, &previousSegv);
  installed.store(true, std::memory_order_release);
}

// Puts our handler back in front of whatever replaced it, which becomes the one it chains to.
void Reclaim(int sig, void (*handler)(int, siginfo_t*, void*), struct sigaction* previous) {
  struct sigaction current;
  if (sigaction(sig, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == handler) return;
  *previous = current;  // our handler is not installed: nothing reads it now
  struct sigaction ours = OurAction(handler);
  sigaction(sig, &ours, nullptr);
}

// A label too long for the slot keeps its end (a path's file name) after "...", cut at a
// character boundary (UTF-8), so that a message never names another, plausible path.
void CopyLabel(Slot& slot, const char* label) {
  size_t n = strlen(label);
  size_t room = sizeof slot.label - 1;
  if (n <= room) {
    memcpy(slot.label, label, n);
    slot.label[n] = '\0';
    return;
  }
  const char* tail = label + n - (room - 3);
  while ((static_cast<unsigned char>(*tail) & 0xC0) == 0x80) ++tail;  // not inside a character
  memcpy(slot.label, "...", 3);
  size_t rest = strlen(tail);
  memcpy(slot.label + 3, tail, rest);
  slot.label[3 + rest] = '\0';
}

}  // namespace

void GuardReinstall() {
  if (!installed.load(std::memory_order_acquire)) return;  // installed later, in front of it
  std::lock_guard<std::mutex> hold(reinstallLock);
  Reclaim(SIGBUS, OnSigbus, &previousBus);
  Reclaim(SIGSEGV, OnSigsegv, &previousSegv);
}

int GuardRegister(uintptr_t start, size_t length, const GuardSlotInfo& info) {
  std::call_once(installOnce, Install);
  int fd = -1;
  if (info.fileFd >= 0) {
    fd = fcntl(info.fileFd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return -2;
  }
  int index;
  {
    std::lock_guard<SpinLock> hold(tableLock);
    if (!freeSlots->empty()) {
      index = freeSlots->back();
      freeSlots->pop_back();
    } else {
      index = highWater.load(std::memory_order_relaxed);
      if (index >= kGuardSlots) {
        if (fd >= 0) close(fd);
        return -1;
      }
      if (index % kChunkSlots == 0 && chunks[index / kChunkSlots].load() == nullptr)
        chunks[index / kChunkSlots].store(new Slot[kChunkSlots], std::memory_order_release);
      highWater.store(index + 1, std::memory_order_release);
    }
  }
  Slot& slot = *At(index);
  slot.prot.store(info.prot, std::memory_order_relaxed);
  slot.mixed.store(false, std::memory_order_relaxed);
  slot.granule.store(info.granule != 0 ? info.granule : ~pageMask + 1, std::memory_order_relaxed);
  slot.fileOffset.store(info.fileOffset, std::memory_order_relaxed);
  slot.truncated.store(0, std::memory_order_relaxed);
  slot.lost.store(0, std::memory_order_relaxed);
  slot.lostFirst.store(UINT64_MAX, std::memory_order_relaxed);
  slot.lostEnd.store(0, std::memory_order_relaxed);
  slot.lostErrno.store(0, std::memory_order_relaxed);
  CopyLabel(slot, info.label);
  slot.fd.store(fd, std::memory_order_release);
  slot.end.store(start + length, std::memory_order_release);
  slot.start.store(start, std::memory_order_release);
  return index;
}

void GuardMove(int index, uintptr_t start, size_t length) {
  Slot& slot = *At(index);
  slot.start.store(0, std::memory_order_release);
  slot.end.store(start + length, std::memory_order_release);
  slot.start.store(start, std::memory_order_release);
}

int GuardProtAt(int index, uintptr_t addr) {
  return index < 0 ? -1 : SlotProtAt(*At(index), addr);
}

void GuardProtect(int index, int prot, bool whole) {
  Slot& slot = *At(index);
  if (whole) {
    slot.prot.store(prot, std::memory_order_relaxed);
    slot.mixed.store(false, std::memory_order_relaxed);
  } else {
    slot.prot.fetch_or(prot, std::memory_order_relaxed);
    slot.mixed.store(true, std::memory_order_relaxed);
  }
}

void GuardForgetFile(int index) {
  Slot& slot = *At(index);
  int fd = slot.fd.load(std::memory_order_acquire);
  if (fd < 0) return;
  slot.fd.store(kGuardedNoFile, std::memory_order_release);
  close(fd);
}

void GuardUnregister(int index) {
  Slot& slot = *At(index);
  slot.start.store(0, std::memory_order_release);
  int fd = slot.fd.exchange(kNotGuarded, std::memory_order_acq_rel);
  if (fd >= 0) close(fd);
  std::lock_guard<SpinLock> hold(tableLock);
  freeSlots->push_back(index);
}

GuardCounts GuardCountsOf(int index) {
  Slot& slot = *At(index);
  GuardCounts counts;
  counts.lost = slot.lost.load(std::memory_order_acquire);
  counts.truncated = slot.truncated.load(std::memory_order_relaxed);
  counts.lostFirst = slot.lostFirst.load(std::memory_order_relaxed);
  counts.lostEnd = slot.lostEnd.load(std::memory_order_relaxed);
  counts.lostErrno = slot.lostErrno.load(std::memory_order_relaxed);
  return counts;
}

int GuardFileOf(int index) {
  int fd = At(index)->fd.load(std::memory_order_relaxed);
  return fd >= 0 ? fd : -1;
}

}  // namespace mman
