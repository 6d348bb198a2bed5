// The life of every range this addon maps, in one place. docs/ARCHITECTURE.md draws it;
// read that first. In short:
//
//   Region (what a Mapping's handle names)    Span (a range of address space we mmap'd)
//     open ──CloseRegion()──▶ closed            owned ──RetireSpan()──▶ retired ──last Unpin()──▶ released
//                                               (by an open region)     (pages kept)              (munmap)
//
// A span is pinned by the open region that owns it, by every buffer made over it until that
// buffer can no longer reach it, by every operation that borrows it (Borrow), and by a span
// that depends on it (Span::keeps). Only the last Unpin() returns the range to the kernel,
// so memory that Node's own asynchronous I/O still points into is never unmapped or reused.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mman {

struct Lifetime;
struct BufferRecord;
struct Canary;

// A range of address space this addon mapped: [base, base + size).
struct Span {
  uint8_t* base = nullptr;
  size_t size = 0;            // a multiple of the page size
  uint32_t pins = 0;          // the owning region + buffers + borrows + dependent spans
  bool retired = false;       // no open region owns it; it lives on for its other pins
  int guardSlot = -1;         // the SIGBUS guard's slot while guarded
  Span* keeps = nullptr;      // a span this one pins (a shrunk region's head, see SplitTail)
  int64_t weight = 0;         // bytes reported to V8 while retired (it no longer sees them)
  Lifetime* owner = nullptr;
  Span* prev = nullptr;       // owner's list of live spans
  Span* next = nullptr;
};

// The native side of one Mapping. The JS handle (an External) owns it.
struct Region {
  Span* span = nullptr;       // its pages, pinned while open
  bool open = true;           // false once closed: JavaScript can no longer reach the pages
  bool shared = false;        // MAP_SHARED: the pages can be mapped twice (see resize)
  bool guarded = false;       // registered with the SIGBUS guard; new spans are too
  int guardProt = 0;
  std::vector<BufferRecord*> buffers;  // buffers over `span` that closing must detach
  Lifetime* owner = nullptr;
};

// One ArrayBuffer made over a region. It pins its span until nothing can reach the memory
// through it: its object collected (seen through `observer`, a weak reference with a
// finalizer), and its backing store with it, unless the store was moved to another
// ArrayBuffer (transfer()), in which case until Node finalizes the store.
struct BufferRecord {
  Region* region = nullptr;     // set while listed in region->buffers
  Span* span = nullptr;         // pinned until settled
  void* data = nullptr;         // where the buffer starts
  napi_ref observer = nullptr;  // weak: cleared when the object is collected (Sweep looks)
  size_t watchIndex = SIZE_MAX; // place in Lifetime::watched
  bool kept = false;            // the caller keeps it and passes it back (Mapping#buffer)
  bool detachedByUs = false;    // so its store was released while its object may live on
  bool storeMoved = false;      // detached by someone else: the store lives on elsewhere
  bool storeReleased = false;
  bool objectGone = false;
  bool storeFinalized = false;  // Node ran the backing store's finalizer: it holds no hint now
  bool creating = true;         // napi_create_external_arraybuffer has not returned
  bool finalizedWhileCreating = false;
  bool orphaned = false;        // its thread went away first: finalizers only free it
  Lifetime* owner = nullptr;
  BufferRecord* prev = nullptr; // owner's list of records
  BufferRecord* next = nullptr;
};

// The spans and buffers of one JavaScript thread (the main thread or a worker).
struct Lifetime {
  explicit Lifetime(napi_env env) : env(env) {}
  ~Lifetime();  // the thread is going away: releases whatever is left
  napi_env env;
  Span* spans = nullptr;
  BufferRecord* records = nullptr;
  std::vector<BufferRecord*> watched;  // retired buffers whose object may still be alive
  Canary* canary = nullptr;            // a fresh object only a weak reference holds: gone
                                       // after the next GC, and its finalizer sweeps
  bool tearingDown = false;            // the thread's environment is going away
};

// ---- transitions (lifetime.cc) ----

// A range just mapped becomes an open region owning one span.
Region* OpenRegion(Lifetime* lifetime, void* base, size_t size, bool shared);

// An ArrayBuffer over [offset, offset + length) of the region's span, which it pins. `kept`:
// the caller holds it and hands it back to CloseRegion/RetireBuffers. nullptr with a JS
// exception pending on failure.
napi_value LendBuffer(napi_env env, Region* region, size_t offset, size_t length, bool kept);

// The buffers made so far over the region stop being its own (unmap, resize): each is
// watched until nothing can reach the memory through it. With `detach`, those it can reach
// (`kept` is the caller's own) are detached first, so JavaScript reads nothing through them.
void RetireBuffers(napi_env env, Region* region, napi_value kept, bool detach);

// unmap(): RetireBuffers, then RetireSpan of its span. Idempotent.
void CloseRegion(napi_env env, Region* region, napi_value kept, bool detach);

// The ArrayBuffer `buffer` is about to move its store elsewhere (transfer()): the records
// over its memory wait for the store's finalizer instead of the object's collection.
void NoteStoreMoving(napi_env env, napi_value buffer);

// The owning region lets go of `span`: it stays mapped while anything else pins it.
// `hidden`: its buffers were detached, so V8 no longer counts their bytes; tell it.
void RetireSpan(Span* span, bool hidden);

// The kernel moved or resized the range of a span in one piece (nothing else pinned it, or it
// grew in place, which keeps every address valid): the same span, a new extent.
void ResizeSpan(Span* span, void* base, size_t size);

// A new span for a region whose old one was retired (resize that had to move).
Span* AdoptSpan(Region* region, void* base, size_t size);

// Shrinking with pins on the pages: the tail [newSize, size) stays mapped for them as a
// retired span that also keeps the head; the region continues on a new head span.
void SplitTail(Region* region, size_t newSize);

void Pin(Span* span);
void Unpin(Span* span);  // the last one releases (munmap) the span

// Marks buffers whose object was collected, releasing what they pinned. Cheap when nothing
// was collected since the last call.
void Sweep(Lifetime* lifetime);

// The JS handle was collected without unmap(): buffers still alive keep the pages.
void DropRegion(Region* region);

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

 private:
  Span* span_;
};

}  // namespace mman
