// The C side of `mman bench scale`: will-it-scale's page_fault1/2/3 loops (anonymous,
// file private, file shared: map 128 MiB, write one byte per page, unmap, count the pages),
// run by `tasks` processes (fork) or threads (pthreads, one address space) for `seconds`.
// Prints one JSON line: {"pages":[per task...],"seconds":s}, s from the first fork or
// thread to the last one's end.
// Usage: page_fault anon|file-private|file-shared processes|threads TASKS SECONDS [FILE]
// FILE (for the file kinds) must hold at least 128 MiB.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MEMSIZE (128UL * 1024 * 1024)

static int kind;  // 0 anon, 1 file private, 2 file shared
static int fd = -1;
static volatile uint64_t *counts;  // one per task, in memory every process shares
static volatile int *stop;

static void *task(void *arg) {
  long t = (long)arg;
  long page = sysconf(_SC_PAGESIZE);
  int flags = kind == 0 ? MAP_PRIVATE | MAP_ANONYMOUS : kind == 1 ? MAP_PRIVATE : MAP_SHARED;
  while (!*stop) {
    char *c = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, flags, kind == 0 ? -1 : fd, 0);
    if (c == MAP_FAILED) { perror("mmap"); exit(1); }
    for (unsigned long i = 0; i < MEMSIZE; i += page) c[i] = 0;
    munmap(c, MEMSIZE);
    counts[t * 8] += MEMSIZE / page;  // a cache line apart
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: page_fault KIND MODE TASKS SECONDS [FILE]\n"); return 2; }
  kind = strcmp(argv[1], "anon") == 0 ? 0 : strcmp(argv[1], "file-private") == 0 ? 1 : 2;
  int threads = strcmp(argv[2], "threads") == 0;
  int tasks = atoi(argv[3]);
  double seconds = atof(argv[4]);
  if (kind != 0) {
    fd = open(argv[5], O_RDWR);
    if (fd < 0) { perror("open"); return 1; }
  }
  char *shared = mmap(NULL, 4096 + (size_t)tasks * 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  stop = (volatile int *)shared;
  counts = (volatile uint64_t *)(shared + 64);
  struct timespec begin, end;
  clock_gettime(CLOCK_MONOTONIC, &begin);
  pthread_t *ids = calloc(tasks, sizeof *ids);
  pid_t *pids = calloc(tasks, sizeof *pids);
  for (long t = 0; t < tasks; t++) {
    if (threads) {
      pthread_create(&ids[t], NULL, task, (void *)t);
    } else if ((pids[t] = fork()) == 0) {
      task((void *)t);
      _exit(0);
    }
  }
  struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
  nanosleep(&ts, NULL);
  *stop = 1;
  for (int t = 0; t < tasks; t++) {
    if (threads) pthread_join(ids[t], NULL);
    else waitpid(pids[t], NULL, 0);
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  double elapsed = (double)(end.tv_sec - begin.tv_sec) + (double)(end.tv_nsec - begin.tv_nsec) / 1e9;
  printf("{\"pages\":[");
  for (int t = 0; t < tasks; t++) printf("%s%llu", t ? "," : "", (unsigned long long)counts[t * 8]);
  printf("],\"seconds\":%.3f}\n", elapsed);  // to the end of the last loop under way
  return 0;
}
