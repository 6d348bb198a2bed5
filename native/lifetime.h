// clang-format off
// The life of every range this addon maps, in one place. docs/ARCHITECTURE.md draws it;
// read that first. In short:
//
//   Region (what a Mapping's handle names)    Span (a range of address space we mmap'd)
//     open ──CloseRegion()──▶ closed            owned ──RetireSpan()──▶ retired ──last Unpin()──▶ released
//                                               (by an open region)     (pages kept)               (munmap)
//
// clang-format on
// A span is pinned by the open region that owns it, by every buffer made over it until
// nothing can reach the memory through that buffer, by every operation that borrows it
// (Borrow), and by a span that depends on it (Span::keeps). Only the last Unpin() returns
// the range to the kernel, so memory that Node's own asynchronous I/O still points into is
// never unmapped or reused under it.
//
// How we learn that a buffer is gone: every ArrayBuffer made over a region holds the
// region's JS handle (the TypeScript layer stores it on the buffer, see src/buffers.ts), so
// once the handle is collected, every buffer over the region is too. A weak reference to
// the handle (Region::handle) tells that synchronously; its finalizer, a turn later.
#pragma once

#include <napi.h>

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "guard.h"

namespace mman {

struct Lifetime;
struct BufferRecord;
struct Canary;
struct Region;

// A range of address space this addon mapped: [base, base + size).
struct Span {
  uint8_t* base = nullptr;
  size_t size = 0;        // a multiple of the page size
  uint32_t pins = 0;      // the owning region + buffers + borrows + dependent spans
  bool retired = false;   // no open region owns it; it lives on for its other pins
  int faultSlot = -1;     // its slot in the fault table (guard.h), or -1 if the table was full
  Span* keeps = nullptr;  // a span this one pins (a shrunk region's head, see SplitTail)
  // A guarded span the open region below let go of (resize): its faults are still the region's
  // to report, while both live (Region::former).
  Region* formerOf = nullptr;
  int64_t weight = 0;  // bytes reported to V8 while retired
  Lifetime* owner = nullptr;
  Span* prev = nullptr;  // owner's list of live spans
  Span* next = nullptr;
};

// The native side of one Mapping, named by its JS handle (an External).
struct Region {
  ~Region() {
    for (Span* span : former) span->formerOf = nullptr;
  }
  Span* span = nullptr;  // its pages, pinned while open
  bool open = true;      // false once closed: the Mapping's methods are done with it
  int flags = 0;         // the mmap flags it was made with (resize() may need them)
  int prot = 0;          // its protection as the Mapping last set it over the whole region
  size_t granule = 0;    // its page size: the system's, or a huge page's (MAP_HUGETLB, hugetlbfs)
  // A file mapping keeps a duplicate of the file's descriptor (O_CLOEXEC) while open only when
  // asked to (keepFile): a private one's resize() that must move maps the file again beside
  // the old pages; a shared one grows the file (growFile) and is handed to other threads
  // (share()). A guarded one's entry in the fault table keeps one of its own (guard.h).
  int fileFd = -1;
  uint64_t fileOffset = 0;  // of its first page, for a file mapping
  bool guarded = false;     // its spans' SIGBUS faults are survived (guard.h)
  // Guarded spans it let go of while open (resize), still mapped for old views: a fault there
  // is still this region's to report. Their counts move to `carried` when they are released.
  std::vector<Span*> former;
  GuardCounts carried;
  std::string label;          // what a fault message calls it: the path, or empty
  napi_ref handle = nullptr;  // weak, to the JS handle; its finalizer is OnHandleCollected
  // Buffers lent over the region whose object is known gone only when the handle is.
  std::vector<BufferRecord*> buffers;
  size_t closedIndex = SIZE_MAX;  // place in Lifetime::closed
  Lifetime* owner = nullptr;
};

// One ArrayBuffer made over a region. It pins its span until nothing can reach the memory
// through it: its object collected, and its backing store with it; or, if the store was
// moved to another ArrayBuffer (transfer()), until Node finalizes the store.
struct BufferRecord {
  Region* region = nullptr;      // set while listed in region->buffers
  Span* span = nullptr;          // pinned until settled
  void* data = nullptr;          // where the buffer starts
  napi_ref observer = nullptr;   // weak, for buffers retired by resize() and for windows
  size_t watchIndex = SIZE_MAX;  // place in Lifetime::watched
  bool kept = false;             // the caller keeps it and passes it back (Mapping#buffer)
  bool detachedByUs = false;     // unmap({ detachViews }): its store went with the detach
  bool storeMoved = false;       // detached by someone else: the store lives on elsewhere
  // The runtime may move the store without telling us (Lifetime::storesMoveUnseen): only the
  // store's finalizer says it is gone.
  bool mayMoveUnseen = false;
  bool storeReleased = false;
  bool objectGone = false;
  bool storeFinalized = false;  // Node ran the store's finalizer: it holds no hint now
  bool creating = true;         // napi_create_external_arraybuffer has not returned
  bool finalizedWhileCreating = false;
  bool orphaned = false;  // its thread went away first: the finalizer only frees it
  Lifetime* owner = nullptr;
  BufferRecord* prev = nullptr;  // owner's list of records
  BufferRecord* next = nullptr;
};

// The spans and buffers of one JavaScript thread (the main thread or a worker). Only that
// thread touches it, except for `stray`, below.
struct Lifetime {
  explicit Lifetime(napi_env env) : env(env), jsThread(pthread_self()) {}
  ~Lifetime();  // the thread is going away: releases whatever is left
  napi_env env;
  pthread_t jsThread;
  Span* spans = nullptr;
  BufferRecord* records = nullptr;
  std::vector<Region*> closed;         // closed regions whose buffers may still be alive
  std::vector<BufferRecord*> watched;  // observed buffers whose object may still be alive
  // This runtime's structuredClone/postMessage moves an external buffer's store into the copy
  // (Deno; Node copies or refuses it, as Bun does), which no transfer() of ours sees.
  bool storesMoveUnseen = false;
  int64_t retiredSpans = 0;  // retired, not yet released (RetireSpan, ReleaseSpan)
  // While a sweep runs: where ReleaseSpan leaves the ranges it released, unmapped together at
  // its end.
  std::vector<std::pair<uint8_t*, size_t>>* batch = nullptr;
  Canary* canary = nullptr;  // an object only a weak reference holds: cleared by
                             // the next GC, and its finalizer sweeps
  bool tearingDown = false;  // the thread's environment is going away
  // Store finalizers that a runtime ran on another thread (Deno frees backing stores on
  // V8's background threads and finalizes them there): queued, and settled on this thread.
  std::mutex strayMutex;
  std::vector<BufferRecord*> stray;  // guarded by strayMutex
  std::atomic<bool> hasStray{false};
};

// ---- transitions (lifetime.cc) ----

// A range just mapped becomes an open region owning one span. Attach its handle next. Fill
// in the region's fault details (prot, fileFd, fileOffset, guarded, label) first: the span
// registers with the fault table from them. nullptr (and the range unmapped) when a guarded
// span cannot be registered (errno: EMFILE, or ENOSPC for a full table).
struct RegionSetup {
  int flags = 0;
  int prot = 0;
  size_t granule = 0;
  int fileFd = -1;    // the region's own duplicate (keepFile), or -1
  int sourceFd = -1;  // guarded: the caller's descriptor, which the fault table duplicates
  uint64_t fileOffset = 0;
  bool guarded = false;
  std::string label;
};
Region* OpenRegion(Lifetime* lifetime, void* base, size_t size, RegionSetup setup);

// Ties the region to its JS handle: when the handle is collected, the region goes.
// False (and the region released) if Node refuses.
bool AttachHandle(napi_env env, Region* region, napi_value handle);

// An ArrayBuffer over [offset, offset + length) of the region's span, which it pins. The
// caller must store the region's handle on it before JavaScript sees it. `kept`: the caller
// keeps it and hands it back to CloseRegion/RetireBuffers; any other buffer (a window of
// view() past 4 GiB) is observed from the start, so that it can be found again. Returns a
// Buffer over the whole new ArrayBuffer (whose `.buffer` is the one lent), or nullptr with a
// JS exception pending on failure.
napi_value LendBuffer(napi_env env, Region* region, size_t offset, size_t length, bool kept);

// resize(): the buffers made so far keep the old extent and stop being the region's: each
// is observed on its own until collected.
void RetireBuffers(napi_env env, Region* region, napi_value kept);

// Closes the region's duplicate file descriptor, if it has one (no resize() will need it).
void ForgetFile(Region* region);

// unmap(): the region closes and its span retires. With `detach`, every buffer it can
// reach (`kept` is the caller's own) is detached first. Idempotent.
void CloseRegion(napi_env env, Region* region, napi_value kept, bool detach);

// The ArrayBuffer `buffer` is about to move its store elsewhere (transfer()): the records
// over its memory wait for the store's finalizer as well as for their objects.
void NoteStoreMoving(napi_env env, napi_value buffer);

// The owning region lets go of `span`: it stays mapped while anything else pins it.
// `hidden`: its buffers were detached, so V8 no longer counts their bytes; tell it.
void RetireSpan(Span* span, bool hidden);

// The kernel moved or resized the range of a span in one piece (nothing else pinned it, or it
// grew in place, which keeps every address valid): the same span, a new extent.
void ResizeSpan(Span* span, void* base, size_t size);

// A new span for a region whose old one is retired right after (resize that had to move); it
// carries over the old one's fault counts.
Span* AdoptSpan(Region* region, void* base, size_t size);

// The region's fault counts: those of its span (carried over every move), and of the spans it
// let go of that old views may still write to.
GuardCounts FaultCounts(const Region* region);

// Shrinking with pins on the pages: the tail [newSize, size) stays mapped for them as a
// retired span that also keeps the head; the region continues on a new head span.
void SplitTail(Region* region, size_t newSize);

void Pin(Span* span);
void Unpin(Span* span);  // the last one releases (munmap) the span

// Releases what collected buffers pinned. Cheap when nothing was collected since the
// last call.
void Sweep(Lifetime* lifetime);

// Process-wide counts (every thread's): ranges held, and those among them retired.
struct SpanCounts {
  int64_t regions, bytes, retiredRegions, retiredBytes;
};
SpanCounts CountSpans();

// An operation that uses a region's pages after the call that started it returns (on the
// threadpool, on a waiter thread) borrows them: they stay mapped until it is destroyed,
// which must happen on the JavaScript thread.
class Borrow {
 public:
  explicit Borrow(Region* region) : span_(region->span) { Pin(span_); }
  ~Borrow() { Unpin(span_); }
  Borrow(const Borrow&) = delete;
  Borrow& operator=(const Borrow&) = delete;
  const Span* span() const { return span_; }

 private:
  Span* span_;
};

}  // namespace mman
