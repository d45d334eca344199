// Transparent huge pages for large, freshly allocated buffers. Under some hypervisors a page fault
// costs more than filling the 4 KiB page it maps, so a volume-sized buffer touched once (a NIfTI
// being assembled, a scratch copy) spends most of its time faulting; on 2 MiB pages it faults a
// few dozen times instead of thousands. Advice only: where the kernel has THP off ("never"), or
// the range holds no aligned 2 MiB, nothing changes.
#pragma once

#include <cstddef>
#include <string>

namespace procnode {

// Advises huge pages for the 2 MiB-aligned part of [data, data + bytes). Call it before the
// range is first touched: pages already faulted in stay small.
void AdviseHugePages(void* data, std::size_t bytes) noexcept;

// Makes `buffer` hold `bytes` bytes (zero-filled beyond its old size) in storage advised as huge
// pages when it has to grow: std::string's own growth would fault it in 4 KiB at a time.
void ResizeOnHugePages(std::string& buffer, std::size_t bytes);

// Reserves `bytes` in `buffer` (for appending), advised as huge pages.
void ReserveOnHugePages(std::string& buffer, std::size_t bytes);

}  // namespace procnode
