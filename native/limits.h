// vm.max_map_count: past it mmap fails with ENOMEM, and so does every allocation V8 and the
// C library make with mmap afterwards, which kills the process (V8: "Zone Allocation
// failed"). mman refuses a new mapping while the process is within a reserve of the limit, so
// that the runtime keeps room for itself.
#pragma once

#include <cstdint>

namespace mman {

// True if one more mapping leaves the reserve free. Cheap: the VMAs are counted from
// /proc/self/maps only when the mappings made since the last count may have used half the
// room it saw.
bool MayMapAnother();

struct MapLimit {
  int64_t areas;    // memory areas (VMAs) of the process at the last count
  int64_t max;      // vm.max_map_count
  int64_t reserve;  // areas kept for the runtime
};
MapLimit LastMapLimit();

}  // namespace mman
