// The state machine of docs/ARCHITECTURE.md: regions open and close; spans are owned,
// retired and released; buffers are lent and settled. Nothing else in the addon unmaps a
// span or decides when a range goes back to the kernel.
#include "lifetime.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "guard.h"
#include "env.h"

namespace mman {

namespace {

// Process-wide, every thread's: what mappingStats() reports.
std::atomic<int64_t> liveRegions{0};
std::atomic<int64_t> liveBytes{0};
std::atomic<int64_t> retiredRegions{0};
std::atomic<int64_t> retiredBytes{0};

// What a retired span is reported to V8 to cost beyond the bytes it no longer counts: its
// VMA, page tables and records, and its share of vm.max_map_count; but only beyond the first
// kRetiredFree of a thread. Reported, it makes V8 collect (a full collection, every 64 MiB
// or so), and so lets the ranges go, before one-page spans pile up by the ten thousand in a
// loop that never yields; below that, the young generation's own collections release them
// (about a thousand at a time in bench/unmap-loop.js), and a full collection every few
// thousand maps would cost more than the rest of the loop (bench/RESULTS.md).
constexpr int64_t kRetiredSpanOverhead = 16 * 1024;
constexpr int64_t kRetiredFree = 4096;

template <typename T>
void LinkInto(T*& head, T* item) {
  item->prev = nullptr;
  item->next = head;
  if (head != nullptr) head->prev = item;
  head = item;
}

template <typename T>
void UnlinkFrom(T*& head, T* item) {
  if (item->prev != nullptr)
    item->prev->next = item->next;
  else
    head = item->next;
  if (item->next != nullptr) item->next->prev = item->prev;
  item->prev = item->next = nullptr;
}

// Swap-remove from a vector whose elements remember their index in `T::*index`.
template <typename T>
void AddIndexed(std::vector<T*>& list, T* item, size_t T::*index) {
  if (item->*index != SIZE_MAX) return;
  item->*index = list.size();
  list.push_back(item);
}

template <typename T>
void RemoveIndexed(std::vector<T*>& list, T* item, size_t T::*index) {
  size_t i = item->*index;
  if (i == SIZE_MAX) return;
  T* last = list.back();
  list[i] = last;
  last->*index = i;
  list.pop_back();
  item->*index = SIZE_MAX;
}

void AddCounts(int64_t regions, int64_t bytes) {
  liveRegions.fetch_add(regions, std::memory_order_relaxed);
  liveBytes.fetch_add(bytes, std::memory_order_relaxed);
}

void AddRetiredCounts(int64_t regions, int64_t bytes) {
  retiredRegions.fetch_add(regions, std::memory_order_relaxed);
  retiredBytes.fetch_add(bytes, std::memory_order_relaxed);
}

Span* NewSpan(Lifetime* lifetime, void* base, size_t size) {
  auto* span = new Span();
  span->base = static_cast<uint8_t*>(base);
  span->size = size;
  span->owner = lifetime;
  LinkInto(lifetime->spans, span);
  AddCounts(1, static_cast<int64_t>(size));
  return span;
}

void AddCounts(GuardCounts* to, const GuardCounts& from) {
  if (from.lost != 0) {
    to->lostFirst = to->lost == 0 ? from.lostFirst : std::min(to->lostFirst, from.lostFirst);
    to->lostEnd = std::max(to->lostEnd, from.lostEnd);
    to->lostErrno = from.lostErrno;
  }
  to->lost += from.lost;
  to->truncated += from.truncated;
}

// A guarded region lets go of `span` (resize: it moved or shrank) while old views may still
// reach it: faults there are still reported through the region, until one of them goes.
void LetGo(Region* region, Span* span) {
  if (!region->guarded || span->faultSlot < 0) return;
  span->formerOf = region;
  region->former.push_back(span);
}

// Enters `span` (the region's, at `fileOffset` in its file) in the fault table. False only for
// a guarded region whose span could not be entered: then it must not be used unguarded.
bool RegisterFaults(const Region* region, Span* span, uint64_t fileOffset, int fileFd) {
  GuardSlotInfo info;
  info.prot = region->prot;
  info.granule = region->granule;
  info.fileFd = region->guarded ? fileFd : -1;  // the slot keeps a duplicate of its own
  info.fileOffset = fileOffset;
  info.label = region->label.c_str();
  span->faultSlot = GuardRegister(reinterpret_cast<uintptr_t>(span->base), span->size, info);
  if (span->faultSlot >= 0) return true;
  if (span->faultSlot == -1) errno = ENOSPC;
  span->faultSlot = -1;
  return !region->guarded;
}

void TellV8(Lifetime* lifetime, int64_t change) {
  if (change == 0 || lifetime->tearingDown) return;
  int64_t total;
  napi_adjust_external_memory(lifetime->env, change, &total);
}

// munmap(2) of a released span's range.
void UnmapRange(uint8_t* base, size_t size) {
  if (munmap(base, size) == 0 || errno != EINVAL) return;
  // A hugetlbfs file mapped with mmap() at a length that is not a multiple of its huge page:
  // the kernel mapped whole huge pages, and unmaps only whole ones.
  uintptr_t address = reinterpret_cast<uintptr_t>(base), start = 0, end = 0;
  if (VmaAt(address, &start, &end) >= 0 && start == address && end - start > size)
    munmap(base, end - start);
}

// The ranges a sweep released, given back with one munmap per run of adjacent ones: the
// kernel places consecutive maps next to each other, so a loop's retired spans mostly are.
// A run that the kernel refuses whole (a hugetlbfs range in it) is given back range by range.
void UnmapBatch(std::vector<std::pair<uint8_t*, size_t>>& ranges) {
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 0; i < ranges.size();) {
    size_t j = i + 1;
    uint8_t* end = ranges[i].first + ranges[i].second;
    while (j < ranges.size() && ranges[j].first == end) end += ranges[j++].second;
    if (j == i + 1 || munmap(ranges[i].first, end - ranges[i].first) != 0)
      for (size_t k = i; k < j; ++k) UnmapRange(ranges[k].first, ranges[k].second);
    i = j;
  }
  ranges.clear();
}

// Released: the one place a span's range goes back to the kernel (at once, or at the end of
// the sweep that released it).
void ReleaseSpan(Span* span) {
  Lifetime* lifetime = span->owner;
  if (Region* former = span->formerOf) {  // what the guard saw here stays the region's to report
    AddCounts(&former->carried, GuardCountsOf(span->faultSlot));
    auto& list = former->former;
    list.erase(std::find(list.begin(), list.end(), span));
  }
  if (span->faultSlot >= 0) GuardUnregister(span->faultSlot);
  if (lifetime->batch != nullptr)
    lifetime->batch->push_back({span->base, span->size});
  else
    UnmapRange(span->base, span->size);
  AddCounts(-1, -static_cast<int64_t>(span->size));
  if (span->retired) {
    AddRetiredCounts(-1, -static_cast<int64_t>(span->size));
    lifetime->retiredSpans--;
  }
  TellV8(lifetime, -span->weight);
  UnlinkFrom(lifetime->spans, span);
  Span* kept = span->keeps;
  delete span;
  if (kept != nullptr) Unpin(kept);
}

void Unlist(BufferRecord* record) {
  Region* region = record->region;
  if (region == nullptr) return;
  auto& list = region->buffers;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] != record) continue;
    list[i] = list.back();
    list.pop_back();
    break;
  }
  record->region = nullptr;
}

// Settled: nothing can reach the span through this buffer any more; it stops pinning it.
// A collected object took its store with it, unless the store had moved elsewhere.
void Settle(BufferRecord* record) {
  if (record->objectGone) {
    RemoveIndexed(record->owner->watched, record, &BufferRecord::watchIndex);
    if (record->observer != nullptr) {
      napi_delete_reference(record->owner->env, record->observer);
      record->observer = nullptr;
    }
  }
  if (record->span == nullptr || !record->objectGone) return;
  if ((record->storeMoved || record->mayMoveUnseen) && !record->storeReleased) return;
  Span* span = record->span;
  record->span = nullptr;
  Unpin(span);
}

// A record is freed once it is settled, listed nowhere, and Node will not call its store's
// finalizer again.
void FreeIfDone(BufferRecord* record) {
  if (!record->storeFinalized || record->span != nullptr || record->region != nullptr) return;
  RemoveIndexed(record->owner->watched, record, &BufferRecord::watchIndex);
  if (record->observer != nullptr) napi_delete_reference(record->owner->env, record->observer);
  UnlinkFrom(record->owner->records, record);
  delete record;
}

void StoreReleased(BufferRecord* record);

// The backing store's finalizer: no ArrayBuffer holds the memory any more. Node and Bun run
// it on the JavaScript thread; Deno may run it on a V8 background thread, where nothing of
// the Lifetime may be touched: the record is queued for the JS thread (TakeStray).
void OnStoreReleased(napi_env, void*, void* hint) {
  auto* record = static_cast<BufferRecord*>(hint);
  if (record->creating) {  // creation failed and Node finalized at once: LendBuffer cleans up
    record->finalizedWhileCreating = true;
    return;
  }
  if (record->orphaned) {  // its thread is gone: nothing else refers to it
    delete record;
    return;
  }
  Lifetime* lifetime = record->owner;
  if (!pthread_equal(pthread_self(), lifetime->jsThread)) {
    std::lock_guard<std::mutex> lock(lifetime->strayMutex);
    lifetime->stray.push_back(record);
    lifetime->hasStray.store(true, std::memory_order_release);
    return;
  }
  StoreReleased(record);
}

// On the JS thread: the store finalizers that ran elsewhere.
void TakeStray(Lifetime* lifetime) {
  if (!lifetime->hasStray.load(std::memory_order_acquire)) return;
  std::vector<BufferRecord*> taken;
  {
    std::lock_guard<std::mutex> lock(lifetime->strayMutex);
    taken.swap(lifetime->stray);
    lifetime->hasStray.store(false, std::memory_order_relaxed);
  }
  for (BufferRecord* record : taken) StoreReleased(record);
}

// Unless we detached it, or it had moved to another ArrayBuffer, its object was collected
// with its store.
void StoreReleased(BufferRecord* record) {
  record->storeFinalized = true;
  record->storeReleased = true;
  if (!record->storeMoved && !record->mayMoveUnseen && !record->detachedByUs) {
    record->objectGone = true;
    Unlist(record);
  }
  Settle(record);
  FreeIfDone(record);
}

// The handle is gone, so is every buffer that held it: those listed settle.
void BuffersGone(Region* region) {
  for (BufferRecord* record : region->buffers) {
    record->region = nullptr;
    record->objectGone = true;
    Settle(record);
    FreeIfDone(record);
  }
  region->buffers.clear();
  RemoveIndexed(region->owner->closed, region, &Region::closedIndex);
}

// The handle's finalizer, a turn after it was collected (Sweep may have seen that first):
// the Mapping and every buffer over the region are gone.
void OnHandleCollected(napi_env env, void* data, void*) {
  auto* region = static_cast<Region*>(data);
  TakeStray(region->owner);
  napi_delete_reference(env, region->handle);
  region->handle = nullptr;
  BuffersGone(region);
  ForgetFile(region);
  if (region->open) {  // dropped without unmap(): collected, not closed
    region->open = false;
    Span* span = region->span;
    region->span = nullptr;
    RetireSpan(span, false);
  }
  delete region;
}

// Observed buffers and closed regions are looked at again after each collection: the
// canary, an object only a weak reference holds, is cleared by any GC, minor or full.
// SweepIfCollected notices that at once; the canary's finalizer, a turn later, sweeps for a
// thread that makes no more calls.
bool NothingToWatch(Lifetime* lifetime) {
  return lifetime->watched.empty() && lifetime->closed.empty();
}

}  // namespace

struct Canary {
  Lifetime* owner;
  napi_ref ref = nullptr;
};

namespace {

void ArmCanary(Lifetime* lifetime);

void OnCanaryCollected(napi_env env, void* data, void*) {
  auto* canary = static_cast<Canary*>(data);
  napi_delete_reference(env, canary->ref);
  Lifetime* lifetime = canary->owner;
  bool current = lifetime->canary == canary;
  delete canary;
  // Not current: SweepIfCollected saw it first. Tearing down: Node finalizes everything,
  // collected or not, and would finalize a new canary too, without end.
  if (!current || lifetime->tearingDown) return;
  lifetime->canary = nullptr;
  Sweep(lifetime);
  ArmCanary(lifetime);
}

void ArmCanary(Lifetime* lifetime) {
  if (lifetime->canary != nullptr || NothingToWatch(lifetime) || lifetime->tearingDown) return;
  napi_value object;
  if (napi_create_object(lifetime->env, &object) != napi_ok) return;
  auto* canary = new Canary{lifetime};
  if (napi_add_finalizer(lifetime->env, object, canary, OnCanaryCollected, nullptr, &canary->ref) !=
      napi_ok) {
    delete canary;
    return;
  }
  lifetime->canary = canary;
}

// Sweeps at once if a GC has run since the last look.
void SweepIfCollected(Lifetime* lifetime) {
  TakeStray(lifetime);
  if (NothingToWatch(lifetime)) return;
  Canary* canary = lifetime->canary;
  if (canary != nullptr) {
    napi_value alive = nullptr;
    napi_get_reference_value(lifetime->env, canary->ref, &alive);
    if (alive != nullptr) return;
    lifetime->canary = nullptr;  // its finalizer, still to come, frees it
    Sweep(lifetime);
  }
  ArmCanary(lifetime);
}

// The object a record's buffer is, if we can still reach it.
napi_value ObjectOf(napi_env env, BufferRecord* record, napi_value kept) {
  napi_value object = nullptr;
  if (record->observer != nullptr) {
    napi_get_reference_value(env, record->observer, &object);
  } else if (record->kept) {
    object = kept;
  }
  return object;
}

// Someone else detached it: its store moved to another ArrayBuffer (transfer()).
void NoticeMoved(napi_env env, BufferRecord* record, napi_value object) {
  void* data = nullptr;
  napi_get_arraybuffer_info(env, object, &data, nullptr);
  if (data == nullptr && !record->detachedByUs) record->storeMoved = true;
}

}  // namespace

void Pin(Span* span) {
  ++span->pins;
}

void Unpin(Span* span) {
  if (--span->pins == 0) ReleaseSpan(span);
}

Region* OpenRegion(Lifetime* lifetime, void* base, size_t size, RegionSetup setup) {
  auto* region = new Region();
  region->owner = lifetime;
  region->flags = setup.flags;
  region->prot = setup.prot;
  region->granule = setup.granule;
  region->fileFd = setup.fileFd;  // with keepFile only; a guarded one's entry keeps its own
  region->fileOffset = setup.fileOffset;
  region->guarded = setup.guarded;
  region->label = std::move(setup.label);
  region->span = NewSpan(lifetime, base, size);
  Pin(region->span);
  if (!RegisterFaults(region, region->span, region->fileOffset, setup.sourceFd)) {
    int err = errno;
    region->open = false;
    ForgetFile(region);
    RetireSpan(region->span, false);  // the only pin: released
    delete region;
    errno = err;
    return nullptr;
  }
  return region;
}

GuardCounts FaultCounts(const Region* region) {
  GuardCounts counts = region->carried;
  if (region->span != nullptr && region->span->faultSlot >= 0)
    AddCounts(&counts, GuardCountsOf(region->span->faultSlot));
  for (const Span* span : region->former) AddCounts(&counts, GuardCountsOf(span->faultSlot));
  return counts;
}

bool AttachHandle(napi_env env, Region* region, napi_value handle) {
  if (napi_add_finalizer(env, handle, region, OnHandleCollected, nullptr, &region->handle) ==
      napi_ok)
    return true;
  region->open = false;
  ForgetFile(region);
  RetireSpan(region->span, false);  // the only pin: released
  delete region;
  return false;
}

void ForgetFile(Region* region) {
  if (region->fileFd < 0) return;
  close(region->fileFd);
  region->fileFd = -1;
}

napi_value LendBuffer(napi_env env, Region* region, size_t offset, size_t length, bool kept) {
  TakeStray(region->owner);
  Span* span = region->span;
  auto* record = new BufferRecord();
  record->owner = region->owner;
  record->data = span->base + offset;
  record->kept = kept;
  record->mayMoveUnseen = region->owner->storesMoveUnseen;
  record->span = span;
  Pin(span);
  LinkInto(region->owner->records, record);
  // A Buffer (a Uint8Array over a new ArrayBuffer): the runtime makes one either way (Node's
  // napi_create_external_arraybuffer makes a Buffer and returns its ArrayBuffer), and the
  // Mapping's `bytes` is that Buffer instead of another made over the ArrayBuffer.
  napi_value bytes = nullptr, buffer = nullptr;
  napi_status status =
      napi_create_external_buffer(env, length, record->data, OnStoreReleased, record, &bytes);
  record->creating = false;
  if (status == napi_ok)  // cannot fail on a Buffer just made: it is a Uint8Array
    napi_get_typedarray_info(env, bytes, nullptr, nullptr, nullptr, &buffer, nullptr);
  if (status != napi_ok || record->finalizedWhileCreating) {
    // Some Node versions finalize at once when creation fails; either way, only we clean up.
    bool created = status == napi_ok;
    UnlinkFrom(region->owner->records, record);
    delete record;
    Unpin(span);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                             created ? "native: ArrayBuffer finalized during creation"
                                     : "native: cannot create an ArrayBuffer of this length");
    }
    return nullptr;
  }
  // A kept buffer is handed back to us; any other must be found again (to detach it).
  if (!kept) napi_create_reference(env, buffer, 0, &record->observer);
  record->region = region;
  region->buffers.push_back(record);
  return bytes;
}

void RetireBuffers(napi_env env, Region* region, napi_value kept) {
  Lifetime* lifetime = region->owner;
  for (BufferRecord* record : region->buffers) {
    record->region = nullptr;
    napi_value object = ObjectOf(env, record, kept);
    if (object != nullptr) {
      NoticeMoved(env, record, object);
      // It keeps the old extent, which stays mapped while it can reach it: observe it.
      if (record->observer == nullptr) napi_create_reference(env, object, 0, &record->observer);
    } else if (record->observer != nullptr) {
      record->objectGone = true;  // collected already
    }
    // else: a kept buffer not handed back, which we cannot reach: its store's finalizer will
    // tell when it is gone.
    if (!record->objectGone && record->observer != nullptr)
      AddIndexed(lifetime->watched, record, &BufferRecord::watchIndex);
    Settle(record);
    FreeIfDone(record);
  }
  region->buffers.clear();
  SweepIfCollected(lifetime);
}

void CloseRegion(napi_env env, Region* region, napi_value kept, bool detach) {
  if (!region->open) return;
  region->open = false;
  ForgetFile(region);
  bool hidden = false;
  for (BufferRecord* record : region->buffers) {
    napi_value object = ObjectOf(env, record, kept);
    if (object == nullptr) continue;
    NoticeMoved(env, record, object);
    if (!detach || record->storeMoved) continue;
    void* data = nullptr;
    napi_get_arraybuffer_info(env, object, &data, nullptr);
    if (data != record->data) continue;
    // An immutable buffer (a read-only mapping's, where the runtime has them) cannot be.
    if (napi_detach_arraybuffer(env, object) != napi_ok) {
      ClearPendingException(env);
      continue;
    }
    record->detachedByUs = true;
    record->storeReleased = true;  // an attached ArrayBuffer is its store's only holder
    hidden = true;
  }
  // Node's asynchronous APIs may hold these buffers, and raw pointers into the pages, well
  // after this call: the pages stay until the handle, which every buffer holds, is collected.
  if (!region->buffers.empty()) AddIndexed(region->owner->closed, region, &Region::closedIndex);
  Span* span = region->span;
  region->span = nullptr;
  // Nobody asks this mapping about faults any more: the guard goes on saving the views kept,
  // without holding the file's descriptor until the collector releases the range.
  if (span->faultSlot >= 0) GuardForgetFile(span->faultSlot);
  for (Span* former : region->former) GuardForgetFile(former->faultSlot);
  RetireSpan(span, hidden);
  SweepIfCollected(region->owner);
}

void NoteStoreMoving(napi_env env, napi_value buffer) {
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_arraybuffer_info(env, buffer, &data, &length) != napi_ok || data == nullptr) return;
  // Rare (an explicit transfer()): a walk over this thread's records is fine. Every record
  // over the same memory waits for a store finalizer; at worst one waits needlessly.
  for (BufferRecord* record = AddonEnvOf(env)->lifetime.records; record != nullptr;
       record = record->next)
    if (record->data == data) record->storeMoved = true;
}

void RetireSpan(Span* span, bool hidden) {
  if (span->pins > 1 && !span->retired) {
    span->retired = true;
    AddRetiredCounts(1, static_cast<int64_t>(span->size));
    // V8 counts the bytes of attached buffers itself; detached ones it no longer sees.
    Lifetime* lifetime = span->owner;
    span->weight = (++lifetime->retiredSpans > kRetiredFree ? kRetiredSpanOverhead : 0) +
                   (hidden ? static_cast<int64_t>(span->size) : 0);
    TellV8(lifetime, span->weight);
  }
  Unpin(span);
}

void ResizeSpan(Span* span, void* base, size_t size) {
  AddCounts(0, static_cast<int64_t>(size) - static_cast<int64_t>(span->size));
  span->base = static_cast<uint8_t*>(base);
  span->size = size;
  if (span->faultSlot >= 0)  // the same file offset: a span moves or grows as one piece
    GuardMove(span->faultSlot, reinterpret_cast<uintptr_t>(base), size);
}

Span* AdoptSpan(Region* region, void* base, size_t size) {
  Span* old = region->span;
  LetGo(region, old);
  region->span = NewSpan(region->owner, base, size);
  Pin(region->span);
  // A guarded region that cannot register its new span (out of descriptors) goes on with the
  // span unguarded rather than lose the pages it just moved; its old span stays guarded. The
  // file's descriptor comes from the old span's entry: a guarded region keeps none of its own.
  RegisterFaults(region, region->span, region->fileOffset,
                 old->faultSlot >= 0 ? GuardFileOf(old->faultSlot) : -1);
  return region->span;
}

void SplitTail(Region* region, size_t newSize) {
  Span* old = region->span;
  Span* head = NewSpan(region->owner, old->base, newSize);
  AddCounts(0, -static_cast<int64_t>(newSize));  // the head's bytes were counted in old's
  Pin(head);                                     // for the region
  Pin(head);  // for old: whatever pins old may point into the head too
  old->keeps = head;
  old->base += newSize;
  old->size -= newSize;
  // The head keeps the slot (and its counts); the tail, now retired, gets a new one.
  head->faultSlot = old->faultSlot;
  if (head->faultSlot >= 0)
    GuardMove(head->faultSlot, reinterpret_cast<uintptr_t>(head->base), head->size);
  RegisterFaults(region, old, region->fileOffset + newSize,
                 head->faultSlot >= 0 ? GuardFileOf(head->faultSlot) : -1);
  LetGo(region, old);
  region->span = head;
  RetireSpan(old, false);
}

void Sweep(Lifetime* lifetime) {
  TakeStray(lifetime);
  if (NothingToWatch(lifetime)) return;
  napi_env env = lifetime->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  std::vector<std::pair<uint8_t*, size_t>> released;
  lifetime->batch = &released;
  // Backwards: removal moves the last element into the freed place, and that one was seen.
  for (size_t i = lifetime->watched.size(); i-- > 0;) {
    if (i >= lifetime->watched.size()) continue;
    BufferRecord* record = lifetime->watched[i];
    napi_value object = nullptr;
    napi_get_reference_value(env, record->observer, &object);
    if (object != nullptr) {
      NoticeMoved(env, record, object);
      continue;
    }
    record->objectGone = true;
    Settle(record);
    FreeIfDone(record);
  }
  for (size_t i = lifetime->closed.size(); i-- > 0;) {
    if (i >= lifetime->closed.size()) continue;
    Region* region = lifetime->closed[i];
    napi_value handle = nullptr;
    napi_get_reference_value(env, region->handle, &handle);
    if (handle == nullptr) BuffersGone(region);  // the region itself goes in its finalizer
  }
  lifetime->batch = nullptr;
  UnmapBatch(released);
  napi_close_handle_scope(env, scope);
}

SpanCounts CountSpans() {
  return {liveRegions.load(), liveBytes.load(), retiredRegions.load(), retiredBytes.load()};
}

Lifetime::~Lifetime() {
  // The thread's environment is being torn down: its objects are all gone, and Node has run
  // the finalizers it will run (every region's among them). What is left is let go here.
  tearingDown = true;
  TakeStray(this);
  canary = nullptr;  // its finalizer has run, or never will
  watched.clear();
  closed.clear();
  while (records != nullptr) {
    BufferRecord* record = records;
    UnlinkFrom(records, record);
    if (record->observer != nullptr) napi_delete_reference(env, record->observer);
    record->observer = nullptr;
    if (record->storeFinalized) {
      delete record;
    } else {
      record->orphaned = true;  // its store's finalizer, still to come, frees it
      record->span = nullptr;
      record->region = nullptr;
    }
  }
  while (spans != nullptr) {
    Span* span = spans;
    span->keeps = nullptr;  // every span goes in this loop
    span->pins = 1;
    Unpin(span);
  }
}

}  // namespace mman
