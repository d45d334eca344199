// Test helper: a fresh, empty database in the throwaway PostgreSQL cluster that ctest's
// "postgres" fixture started (tests/harness/pgcluster.py writes its DSN to
// $PROCNODE_TEST_PG_DIR/dsn). Skips the test, saying why, when no cluster is running.
#pragma once

#include <chrono>
#include <string>
#include <thread>

namespace procnode::testing {

// Waits until `predicate` holds or `limit` passes; returns whether it held.
template <typename P>
bool WaitUntil(P predicate, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return predicate();
}

// Returns the DSN of a new database with the job schema applied when `migrate` is true.
std::string FreshDatabase(bool migrate = true);

}  // namespace procnode::testing
