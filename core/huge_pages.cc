#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace procnode {
namespace {

constexpr std::uintptr_t kHugePage = 2u << 20;

}  // namespace

void AdviseHugePages(void* data, std::size_t bytes) noexcept {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const std::uintptr_t last = (begin + bytes) & ~(kHugePage - 1);
  if (last <= first) return;
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // advice: failure is harmless
}

void ReserveOnHugePages(std::string& buffer, std::size_t bytes) {
  if (bytes <= buffer.capacity()) return;
  std::string grown;
  grown.reserve(bytes);
  // The untouched tail of the new storage: only its first bytes (the old contents) get written now.
  AdviseHugePages(grown.data(), bytes);
  grown.append(buffer);
  buffer.swap(grown);
}

void ResizeOnHugePages(std::string& buffer, std::size_t bytes) {
  ReserveOnHugePages(buffer, bytes);
  buffer.resize(bytes);
}

}  // namespace procnode
