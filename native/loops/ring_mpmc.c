// The C baseline for bench/ring.js: the protocol of src/ring.ts for many writers and many
// readers (docs/ARCHITECTURE.md, "RingBuffer with many writers or readers"), in C, on one
// shared anonymous mapping: records [state, length] + bytes, 8-aligned; TAIL moved under a
// writers' lock, READ and HEAD under a readers' lock (each a futex word holding the holder's
// thread id, with a sleepers bit, as a Mutex word); readers sleep on COMMITS, writers on
// HEAD, each with a waiter count so that nobody makes a syscall while the other side is
// awake; a spin before each sleep. No liveness checks (nobody dies here).
//
// Usage: ring_mpmc proc|thread writers readers size messages capacity spin [pace_ns]
//        ring_mpmc solo size messages capacity
// solo: one thread, batches of writes (place, fill, commit) then as many reads (claim, the
// timestamp, release) on a ring of its own, four rounds: the CPU a message costs each side
// with no other side to wait for or share cache lines with. Prints, for rounds 2-4, one JSON
// line {"write": ns, "read": ns} each (a message's write, and its read with the release).
// Every writer writes messages/writers messages of `size` bytes (with pace_ns, one every
// pace_ns nanoseconds, busy-waiting in between: latency at a rate the reader keeps up with,
// every message sampled); each 64th carries
// CLOCK_MONOTONIC in its first 8 bytes (the clock process.hrtime reads), and the reader that
// gets it records now - then. Prints one JSON line: {"seconds": s, "messages": n, "p50": ns,
// "p99": ns} (seconds from the start to the last message read).
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEAD 0
#define TAIL 16
#define READERS_ASLEEP 32
#define WRITERS_ASLEEP 48
#define READ 80
#define WRITE_LOCK 96
#define READ_LOCK 112
#define COMMITS 128
#define ENDED 176
#define DONE 192     // readers that have finished
#define STARTED 208  // writers that have started
#define HEADER_WORDS 1024

#define PHASE 0xc0000000u
#define COMMITTED 0x40000000u
#define READING 0x80000000u
#define FREE 0xc0000000u
#define SKIP (-1)
#define END (-2)
#define WAITERS 0x80000000u

static int32_t *words;
static int32_t *lengths;
static uint8_t *data;
static uint32_t capacity, mask;
static long spin;
static int size;
static long per_writer;
static long pace;
static int64_t *samples;  // per reader: latency samples
static long sample_cap;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t self_tid(void) {
  static __thread uint32_t tid;
  if (tid == 0) tid = (uint32_t)syscall(SYS_gettid);
  return tid;
}

static long futex(int32_t *w, int op, int32_t val) {
  return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static uint32_t load(int i) { return (uint32_t)__atomic_load_n(&words[i], __ATOMIC_SEQ_CST); }
static void store(int i, uint32_t v) { __atomic_store_n(&words[i], (int32_t)v, __ATOMIC_SEQ_CST); }

static void lock(int i) {
  uint32_t self = self_tid();
  int32_t c = 0;
  if (__atomic_compare_exchange_n(&words[i], &c, (int32_t)self, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return;
  for (int s = 0; s < 200; s++) {
    c = 0;
    if (__atomic_compare_exchange_n(&words[i], &c, (int32_t)self, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return;
  }
  for (;;) {
    c = 0;
    if (__atomic_compare_exchange_n(&words[i], &c, (int32_t)(self | WAITERS), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
      return;
    if (((uint32_t)c & WAITERS) == 0 &&
        !__atomic_compare_exchange_n(&words[i], &c, (int32_t)((uint32_t)c | WAITERS), 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST))
      continue;
    futex(&words[i], FUTEX_WAIT, (int32_t)((uint32_t)c | WAITERS));
  }
}

static void unlock(int i) {
  uint32_t old = (uint32_t)__atomic_exchange_n(&words[i], 0, __ATOMIC_SEQ_CST);
  if (old & WAITERS) futex(&words[i], FUTEX_WAKE, 1);
}

// Waits while words[i] == seen: `spin` looks, then FUTEX_WAIT counted in words[asleep].
static void await_change(int i, int32_t seen, int asleep) {
  for (long s = 0; s < spin; s++) {
    if (__atomic_load_n(&words[i], __ATOMIC_ACQUIRE) != seen) return;
    if ((s & 1023) == 1023) sched_yield();
  }
  __atomic_add_fetch(&words[asleep], 1, __ATOMIC_SEQ_CST);
  futex(&words[i], FUTEX_WAIT, seen);
  __atomic_sub_fetch(&words[asleep], 1, __ATOMIC_SEQ_CST);
}

static void wake(int i, int asleep, int count) {
  if (__atomic_load_n(&words[asleep], __ATOMIC_SEQ_CST) != 0) futex(&words[i], FUTEX_WAKE, count);
}

static uint32_t size_of(int32_t length, uint32_t offset) {
  if (length == SKIP) return capacity - offset;
  if (length < 0) return 8;
  return ((uint32_t)length + 8 + 7) & ~7u;
}

// Places a reserved record of `length` bytes: its offset, or -1 while the ring is full.
static long place(int32_t length) {
  uint32_t need = ((uint32_t)length + 8 + 7) & ~7u;
  lock(WRITE_LOCK);
  uint32_t tail = load(TAIL);
  uint32_t free_ = capacity - (tail - load(HEAD));
  uint32_t to_end = capacity - (tail & mask);
  uint32_t at = tail;
  if (need > to_end) {
    if (free_ < to_end + need) { unlock(WRITE_LOCK); return -1; }
    lengths[((tail & mask) >> 2) + 1] = SKIP;
    __atomic_store_n(&lengths[(tail & mask) >> 2], (int32_t)FREE, __ATOMIC_SEQ_CST);
    at = tail + to_end;
  } else if (free_ < need) {
    unlock(WRITE_LOCK);
    return -1;
  }
  uint32_t offset = at & mask;
  lengths[(offset >> 2) + 1] = length;
  __atomic_store_n(&lengths[offset >> 2], (int32_t)self_tid(), __ATOMIC_SEQ_CST);
  store(TAIL, at + need);
  unlock(WRITE_LOCK);
  return offset;
}

static void publish(int count) {
  __atomic_add_fetch(&words[COMMITS], 1, __ATOMIC_SEQ_CST);
  wake(COMMITS, READERS_ASLEEP, count);
}

static void writer(int id) {
  __atomic_add_fetch(&words[STARTED], 1, __ATOMIC_SEQ_CST);
  uint64_t begin = now_ns();
  for (long seq = 0; seq < per_writer; seq++) {
    if (pace > 0)
      while (now_ns() < begin + (uint64_t)(seq * pace)) {
      }
    long offset;
    for (;;) {
      int32_t head = (int32_t)load(HEAD);
      if ((offset = place(size)) >= 0) break;
      await_change(HEAD, head, WRITERS_ASLEEP);
    }
    uint8_t *bytes = data + offset + 8;
    memset(bytes, (int)(id + seq), (size_t)size);
    uint64_t t = pace > 0 || (seq & 63) == 0 ? now_ns() : 0;
    memcpy(bytes, &t, 8);
    __atomic_store_n(&lengths[offset >> 2], (int32_t)COMMITTED, __ATOMIC_SEQ_CST);
    publish(1);
  }
}

static void end_stream(void) {
  for (;;) {
    int32_t head = (int32_t)load(HEAD);
    lock(WRITE_LOCK);
    uint32_t tail = load(TAIL);
    if (capacity - (tail - load(HEAD)) >= 8) {
      uint32_t offset = tail & mask;
      lengths[(offset >> 2) + 1] = END;
      __atomic_store_n(&lengths[offset >> 2], (int32_t)COMMITTED, __ATOMIC_SEQ_CST);
      store(ENDED, tail | 1);
      store(TAIL, tail + 8);
      unlock(WRITE_LOCK);
      publish(1 << 30);
      return;
    }
    unlock(WRITE_LOCK);
    await_change(HEAD, head, WRITERS_ASLEEP);
  }
}

static int advance_locked(void) {
  int moved = 0;
  for (;;) {
    uint32_t head = load(HEAD), read = load(READ);
    if (head == read) break;
    uint32_t offset = head & mask;
    uint32_t state = (uint32_t)__atomic_load_n(&lengths[offset >> 2], __ATOMIC_SEQ_CST);
    if ((state & PHASE) != FREE) break;
    store(HEAD, head + size_of(lengths[(offset >> 2) + 1], offset));
    moved = 1;
  }
  return moved;
}

// The next message claimed: its offset; -2 at the end; -1 while there is none.
static long claim(void) {
  long result = -1;
  int more = 0, passed = 0;
  lock(READ_LOCK);
  for (;;) {
    uint32_t read = load(READ), tail = load(TAIL);
    if (read == tail) break;
    uint32_t offset = read & mask;
    uint32_t state = (uint32_t)__atomic_load_n(&lengths[offset >> 2], __ATOMIC_SEQ_CST);
    int32_t length = lengths[(offset >> 2) + 1];
    if (length == END) { result = -2; break; }
    uint32_t next = read + size_of(length, offset);
    if (state == COMMITTED) {
      __atomic_store_n(&lengths[offset >> 2], (int32_t)(READING | self_tid()), __ATOMIC_SEQ_CST);
      store(READ, next);
      result = offset;
      more = next != tail;
      break;
    }
    if ((state & PHASE) == 0) break;  // reserved: wait
    store(READ, next);
    passed = 1;
  }
  int moved = passed && advance_locked();
  unlock(READ_LOCK);
  if (moved) wake(HEAD, WRITERS_ASLEEP, 1 << 30);
  if (more) wake(COMMITS, READERS_ASLEEP, 1);
  return result;
}

static void release(uint32_t offset) {
  __atomic_store_n(&lengths[offset >> 2], (int32_t)FREE, __ATOMIC_SEQ_CST);
  if ((load(HEAD) & mask) != offset) return;
  lock(READ_LOCK);
  int moved = advance_locked();
  unlock(READ_LOCK);
  if (moved) wake(HEAD, WRITERS_ASLEEP, 1 << 30);
}

static long reader(int index) {
  int64_t *mine = samples + (size_t)index * (size_t)sample_cap;
  long got = 0, n = 0;
  for (;;) {
    int32_t commits = (int32_t)load(COMMITS);
    long offset = claim();
    if (offset == -2) break;
    if (offset == -1) {
      await_change(COMMITS, commits, READERS_ASLEEP);
      continue;
    }
    uint64_t t;
    memcpy(&t, data + offset + 8, 8);
    if (t != 0 && n < sample_cap) mine[n++] = (int64_t)(now_ns() - t);
    got++;
    release((uint32_t)offset);
  }
  mine[sample_cap - 1] = n;  // the count, in the last slot
  return got;
}

static void *writer_thread(void *arg) { writer((int)(intptr_t)arg); return NULL; }
static void *reader_thread(void *arg) { reader((int)(intptr_t)arg); return NULL; }

static int cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int solo(int argc, char **argv) {
  if (argc < 5) return 2;
  size = atoi(argv[2]);
  long messages = atol(argv[3]);
  capacity = (uint32_t)atol(argv[4]);
  mask = capacity - 1;
  spin = 0;
  uint8_t *base = mmap(NULL, HEADER_WORDS * 4 + capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  words = (int32_t *)base;
  data = base + HEADER_WORDS * 4;
  lengths = (int32_t *)data;
  long batch = (long)(capacity / 2) / (size + 16);
  uint64_t sum = 0;
  for (int round = 0; round < 4; round++) {
    uint64_t tw = 0, tr = 0;
    long done = 0;
    for (; done < messages; done += batch) {
      uint64_t t0 = now_ns();
      for (long i = 0; i < batch; i++) {
        long offset = place(size);
        uint8_t *bytes = data + offset + 8;
        memset(bytes, (int)i, (size_t)size);
        uint64_t t = (i & 63) == 0 ? now_ns() : 0;  // as the writers of the runs above
        memcpy(bytes, &t, 8);
        __atomic_store_n(&lengths[offset >> 2], (int32_t)COMMITTED, __ATOMIC_SEQ_CST);
        publish(1);
      }
      uint64_t t1 = now_ns();
      for (long i = 0; i < batch; i++) {
        long offset = claim();
        uint64_t t;
        memcpy(&t, data + offset + 8, 8);
        sum += t;
        release((uint32_t)offset);
      }
      tr += now_ns() - t1;
      tw += t1 - t0;
    }
    if (round > 0) printf("{\"write\": %.1f, \"read\": %.1f}\n", (double)tw / (double)done, (double)tr / (double)done);
  }
  return (int)(sum & 0);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "solo") == 0) return solo(argc, argv);
  if (argc < 8) {
    fprintf(stderr, "usage: ring_mpmc proc|thread writers readers size messages capacity spin\n");
    return 2;
  }
  int threads = strcmp(argv[1], "thread") == 0;
  int writers = atoi(argv[2]), readers = atoi(argv[3]);
  size = atoi(argv[4]);
  long messages = atol(argv[5]);
  capacity = (uint32_t)atol(argv[6]);
  spin = atol(argv[7]);
  mask = capacity - 1;
  per_writer = messages / writers;
  pace = argc > 8 ? atol(argv[8]) : 0;
  sample_cap = (pace > 0 ? per_writer * writers : per_writer * writers / 64) + 2;
  size_t total = HEADER_WORDS * 4 + capacity + (size_t)readers * (size_t)sample_cap * 8;
  uint8_t *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  words = (int32_t *)base;
  data = base + HEADER_WORDS * 4;
  lengths = (int32_t *)data;
  samples = (int64_t *)(data + capacity);

  uint64_t start = now_ns();
  pthread_t tids[64];
  pid_t pids[64];
  int n = 0;
  for (int r = 0; r < readers; r++) {
    if (threads) pthread_create(&tids[n++], NULL, reader_thread, (void *)(intptr_t)r);
    else if ((pids[n++] = fork()) == 0) { reader(r); _exit(0); }
  }
  for (int w = 0; w < writers; w++) {
    if (threads) pthread_create(&tids[n++], NULL, writer_thread, (void *)(intptr_t)w);
    else if ((pids[n++] = fork()) == 0) { writer(w); _exit(0); }
  }
  // Wait for the writers (the last `writers` of the list), then end the stream, then the readers.
  for (int i = readers; i < n; i++) {
    if (threads) pthread_join(tids[i], NULL);
    else waitpid(pids[i], NULL, 0);
  }
  end_stream();
  for (int i = 0; i < readers; i++) {
    if (threads) pthread_join(tids[i], NULL);
    else waitpid(pids[i], NULL, 0);
  }
  double seconds = (double)(now_ns() - start) / 1e9;
  long count = 0;
  int64_t *all = malloc((size_t)readers * (size_t)sample_cap * 8);
  for (int r = 0; r < readers; r++) {
    int64_t *mine = samples + (size_t)r * (size_t)sample_cap;
    long k = (long)mine[sample_cap - 1];
    memcpy(all + count, mine, (size_t)k * 8);
    count += k;
  }
  qsort(all, (size_t)count, 8, cmp);
  printf("{\"seconds\": %.6f, \"messages\": %ld, \"p50\": %lld, \"p99\": %lld}\n", seconds, per_writer * writers,
         count ? (long long)all[count / 2] : -1LL, count ? (long long)all[(count * 99) / 100] : -1LL);
  return 0;
}
