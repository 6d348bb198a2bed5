// The fault table: every span the addon maps is registered here, so that a fault in it that
// would kill the process is first named on stderr (which mapping, at what address, and why),
// and a SIGBUS in a guarded file mapping is survived instead: a zero page is mapped over the
// faulting page, and the fault is counted as a truncation (the page lies past the end of the
// file) or as a lost page (the file is long enough, but the page could not be backed: no
// space left on its filesystem, or an I/O error). Process-wide, lock-free for the handlers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mman {

// What a guarded slot has seen since it was registered.
struct GuardCounts {
  uint32_t truncated = 0;  // pages past the end of the file, replaced by zero pages
  uint32_t lost = 0;       // pages inside the file that could not be backed, replaced too
  uint64_t lostFirst = 0;  // the lowest file offset among the lost pages
  uint64_t lostEnd = 0;    // the end of the highest
  int lostErrno = 0;       // ENOSPC (the filesystem had no space left) or EIO
};

struct GuardSlotInfo {
  int prot = 0;             // the pages' protection, for messages and zero pages
  size_t granule = 0;       // the pages' size: the page size, or a huge page's (hugetlbfs)
  int fileFd = -1;          // guarded: a descriptor of the file (the slot takes its own dup)
  uint64_t fileOffset = 0;  // the file offset of the slot's first byte (guarded)
  const char* label = "";   // what to call the mapping in a message: a path, a name, or ""
};

// Registers [start, start + length). Returns the slot, -1 when every slot is taken
// (kGuardSlots), or -2 when the guarded descriptor cannot be duplicated (errno set).
// Installs the handlers on first use.
int GuardRegister(uintptr_t start, size_t length, const GuardSlotInfo& info);
// Puts the guard's SIGBUS and SIGSEGV handlers back in front of any installed after them (a
// JavaScript process.on('SIGBUS') listener installs libuv's), chaining to those. A no-op until
// the guard is installed.
void GuardReinstall();
constexpr int kGuardSlots = 1 << 20;
// Moves a registered slot to a new range that starts at the same file offset (after mremap,
// which moves or grows a range in one piece, or a split that keeps the head).
void GuardMove(int slot, uintptr_t start, size_t length);
// The protection changed (mprotect) over the whole slot, or over part of it (`whole` false):
// then the handlers ask the kernel for a page's protection when they need it.
void GuardProtect(int slot, int prot, bool whole);
// The protection at `addr` of a registered slot, as protect() last set it (asking the kernel
// when protect() changed only part of the slot), or -1 when `slot` is -1.
int GuardProtAt(int slot, uintptr_t addr);
// The mapping was unmapped, and the slot's range lives on only for views kept: its SIGBUS
// faults are still survived, but no longer told apart (nobody asks the mapping any more), and
// the slot's descriptor is closed now rather than when the collector releases the range.
void GuardForgetFile(int slot);
// Forgets the slot (and closes its descriptor): faults in the range go to the previous handlers.
void GuardUnregister(int slot);
GuardCounts GuardCountsOf(int slot);
// The descriptor a guarded slot keeps (still the slot's: duplicate it to keep it), or -1.
int GuardFileOf(int slot);

// The protection of the memory area (VMA) holding `addr`, and its bounds, from /proc/self/maps;
// -1 if no area holds it. Plain system calls into buffers on the stack: fit for a signal handler.
int VmaAt(uintptr_t addr, uintptr_t* start, uintptr_t* end);

}  // namespace mman
