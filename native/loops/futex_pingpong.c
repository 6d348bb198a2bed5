// The C baseline for the wait/notify ping-pong of bench/mutex.js and bench/ipc.js: two
// processes (fork) on one shared anonymous page, each round the parent stores PING = i and
// wakes, the child waits for it (spinning `spin` loads first, then FUTEX_WAIT), stores PONG = i
// and wakes.
//   futex_pingpong rounds spin            a FUTEX_WAKE every time (JavaScript's plain notify())
//   futex_pingpong rounds spin waiters    mman's low-latency protocol (wait with spin and
//                                         waitersIndex, notify with waitersIndex): a sleeper
//                                         counts itself in a waiter word first, and a post
//                                         wakes only when that word is not zero; the spin is
//                                         native/futex.cc's (a sched_yield every 1024 loads)
//   futex_pingpong rounds spin waiters pin   the same with the parent on CPU 0 and the child
//                                         on CPU 1 (the scheduler otherwise often keeps both
//                                         on one CPU, where no spin can see the other move)
// Prints ns per round trip.
// With `wake` as the first argument, prints ns per FUTEX_WAKE on a shared word nobody waits on
// (the syscall each round trip pays twice): futex_pingpong wake count
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void await_value(int *word, int want, long spin) {
  for (long s = 0; s < spin; s++)
    if (__atomic_load_n(word, __ATOMIC_ACQUIRE) == want) return;
  int seen;
  while ((seen = __atomic_load_n(word, __ATOMIC_ACQUIRE)) != want)
    syscall(SYS_futex, word, FUTEX_WAIT, seen, NULL, NULL, 0);
}

static void post(int *word, int value) {
  __atomic_store_n(word, value, __ATOMIC_RELEASE);
  syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

// As mman's wait(word, want - 1, { spin, waitersIndex }) in a loop until the word is `want`.
static void await_counted(int *word, int *waiters, int want, long spin) {
  for (long s = 0; s < spin; s++) {
    __asm__ __volatile__("" ::: "memory");
    if ((s & 1023) == 1023) sched_yield();
    if (__atomic_load_n(word, __ATOMIC_ACQUIRE) == want) return;
  }
  int seen;
  while ((seen = __atomic_load_n(word, __ATOMIC_SEQ_CST)) != want) {
    __atomic_add_fetch(waiters, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, word, FUTEX_WAIT_BITSET, seen, NULL, NULL, FUTEX_BITSET_MATCH_ANY);
    __atomic_sub_fetch(waiters, 1, __ATOMIC_SEQ_CST);
  }
}

// As Atomics.store(word, value) and mman's notify(word, 1, { waitersIndex }).
static void post_counted(int *word, int *waiters, int value) {
  __atomic_store_n(word, value, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(waiters, __ATOMIC_SEQ_CST) != 0) syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int main(int argc, char **argv) {
  if (argc > 2 && argv[1][0] == 'w') {
    long count = atol(argv[2]);
    int *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint64_t start = now_ns();
    for (long i = 0; i < count; i++) syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
    printf("%.1f\n", (double)(now_ns() - start) / (double)count);
    return 0;
  }
  long rounds = argc > 1 ? atol(argv[1]) : 20000;
  long spin = argc > 2 ? atol(argv[2]) : 0;
  int counted = argc > 3 && argv[3][0] == 'w';
  int pin = argc > 4 && argv[4][0] == 'p';
  int *v = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (v == MAP_FAILED) { perror("mmap"); return 1; }
  // A cache line apart each, as bench/ipc.js lays them out.
  int *ping = &v[0], *pong = &v[16], *pingWaiters = &v[32], *pongWaiters = &v[48];
  pid_t child = fork();
  if (pin) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(child == 0 ? 1 : 0, &cpus);
    sched_setaffinity(0, sizeof cpus, &cpus);
  }
  if (child == 0) {
    for (int i = 1; i <= rounds; i++) {
      if (counted) {
        await_counted(ping, pingWaiters, i, spin);
        post_counted(pong, pongWaiters, i);
      } else {
        await_value(ping, i, spin);
        post(pong, i);
      }
    }
    _exit(0);
  }
  uint64_t start = now_ns();
  for (int i = 1; i <= rounds; i++) {
    if (counted) {
      post_counted(ping, pingWaiters, i);
      await_counted(pong, pongWaiters, i, spin);
    } else {
      post(ping, i);
      await_value(pong, i, spin);
    }
  }
  uint64_t took = now_ns() - start;
  waitpid(child, NULL, 0);
  printf("%.1f\n", (double)took / (double)rounds);
  return 0;
}
