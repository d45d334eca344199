// Test helper: a fresh, empty database in the throwaway PostgreSQL cluster that ctest's
// "postgres" fixture started (tests/harness/pgcluster.py writes its DSN to
// $PROCNODE_TEST_PG_DIR/dsn). Skips the test, saying why, when no cluster is running.
#pragma once

#include <string>

namespace procnode::testing {

// Returns the DSN of a new database with the job schema applied when `migrate` is true.
std::string FreshDatabase(bool migrate = true);

}  // namespace procnode::testing
