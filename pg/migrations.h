// Schema migrations of a procnode database (the job database from schemas/jobdb, the PHI vault
// from schemas/vault), compiled in by pg/embed_migrations.cmake.
//
// ApplyMigrations() applies the missing ones in order, each in the same transaction as its row in
// procnode_schema_migrations, under an advisory lock so that several nodes starting together do
// not race. Idempotent. A database whose schema is newer than this binary knows is refused with
// Error(kUnsupported) and left untouched; an unreachable database is Error(kUnavailable).
#pragma once

#include <string>
#include <vector>

namespace procnode {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// The job database's and the PHI vault's migrations (generated).
const std::vector<Migration>& JobDbMigrations();
const std::vector<Migration>& VaultMigrations();

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  // names
};

// `name` says which database in messages ("job database", "PHI vault").
MigrationReport ApplyMigrations(const std::string& dsn, const std::vector<Migration>& migrations,
                                const std::string& name = "job database");

}  // namespace procnode
