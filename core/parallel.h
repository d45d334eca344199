// ParallelFor(count, fn): calls fn(i) for i in [0, count) on up to DefaultParallelism() threads,
// each index once. The first exception (lowest index) is rethrown after every thread finished;
// indices not yet started are skipped once one failed. fn must be safe to call concurrently.
#pragma once

#include <cstddef>
#include <functional>

namespace procnode {

// Hardware threads, at most 8, at least 1; PROCNODE_THREADS in the environment overrides.
unsigned DefaultParallelism();

void ParallelFor(std::size_t count, const std::function<void(std::size_t)>& fn, unsigned threads = 0);

}  // namespace procnode
