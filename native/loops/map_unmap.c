// The C baseline for one-page mmap + munmap: what the library's mmap() + unmap() is
// compared with. Prints ns per iteration for the plain loop and for the loop that also
// writes the page (one fault), and with a file, for a read-only shared mapping of its first
// page on one descriptor opened once. Usage: map_unmap [iterations] [file]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double loop(long iterations, size_t page, int touch) {
  uint64_t start = now_ns();
  for (long i = 0; i < iterations; i++) {
    volatile char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    if (touch) p[0] = 1;
    if (munmap((void *)p, page) != 0) { perror("munmap"); exit(1); }
  }
  return (double)(now_ns() - start) / (double)iterations;
}

static double fileLoop(long iterations, size_t page, int fd) {
  uint64_t start = now_ns();
  for (long i = 0; i < iterations; i++) {
    void *p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    if (munmap(p, page) != 0) { perror("munmap"); exit(1); }
  }
  return (double)(now_ns() - start) / (double)iterations;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 200000;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  loop(iterations / 10 + 1, page, 1);  // warm up: page tables, the kernel's caches
  double plain = loop(iterations, page, 0);
  double touched = loop(iterations, page, 1);
  double file = 0;
  if (argc > 2) {
    int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror("open"); exit(1); }
    fileLoop(iterations / 10 + 1, page, fd);
    file = fileLoop(iterations, page, fd);
    close(fd);
  }
  printf("{\"iterations\":%ld,\"mapUnmapNs\":%.1f,\"mapTouchUnmapNs\":%.1f,\"fileMapUnmapNs\":%.1f}\n", iterations,
         plain, touched, file);
  return 0;
}
