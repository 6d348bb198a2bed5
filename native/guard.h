// The truncation guard: a process-wide SIGBUS handler that, for a page of a guarded
// mapping whose file was truncated under it, maps a zero page in its place and counts it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mman {

// Registers [start, start + length) as guarded; replacement pages get `prot`; the count of
// replaced pages starts at `faults`. Returns the slot, or -1 when every slot is taken.
// Installs the handler on first use.
int GuardRegister(uintptr_t start, size_t length, int prot, uint32_t faults);
// Moves a registered slot to a new range (after mremap).
void GuardMove(int slot, uintptr_t start, size_t length);
// Forgets the slot: faults in the range go to the previous handler again.
void GuardUnregister(int slot);
// Pages replaced in the slot's range since it was registered.
uint32_t GuardFaults(int slot);

}  // namespace mman
