#include "limits.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>

namespace mman {

namespace {

std::mutex countLock;
std::atomic<int64_t> budget{0};  // mappings allowed before the next count
MapLimit last = {0, 0, 0};       // guarded by countLock

// Lines of a /proc file, read in large pieces; -1 if it cannot be read.
int64_t CountLines(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buffer[16384];  // on the stack: thread_local storage in an addon can exhaust the static TLS
                       // block
  int64_t lines = 0;
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    lines += std::count(buffer, buffer + n, '\n');
  }
  close(fd);
  return lines;
}

int64_t ReadNumber(const char* path, int64_t fallback) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fallback;
  char text[32] = {};
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return fallback;
  return strtoll(text, nullptr, 10);
}

}  // namespace

bool MayMapAnother() {
  if (budget.fetch_sub(1, std::memory_order_relaxed) > 0) return true;
  std::lock_guard<std::mutex> hold(countLock);
  if (budget.load(std::memory_order_relaxed) > 0) {  // another thread counted meanwhile
    budget.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
  int64_t max = ReadNumber("/proc/sys/vm/max_map_count", 65530);
  int64_t areas = CountLines("/proc/self/maps");
  if (areas < 0) {  // no /proc: nothing to go by, and mmap's own ENOMEM is the answer
    budget.store(1 << 20, std::memory_order_relaxed);
    return true;
  }
  // A new mapping can add up to two areas (it may split a neighbour's): keep a reserve of
  // 1/16 of the limit, at least 4096, for the runtime's own heap, stacks, threads and
  // libraries (a worker starting, a heap growing: each takes areas of its own).
  int64_t reserve = std::max<int64_t>(4096, max / 16);
  last = {areas, max, reserve};
  int64_t room = max - reserve - areas;
  if (room <= 0) {
    budget.store(0, std::memory_order_relaxed);
    return false;
  }
  budget.store((room - 1) / 2, std::memory_order_relaxed);
  return true;
}

MapLimit LastMapLimit() {
  std::lock_guard<std::mutex> hold(countLock);
  return last;
}

}  // namespace mman
