// Schema migrations of the job database, compiled in from schemas/jobdb.
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

const std::vector<Migration>& JobDbMigrations();

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  // names
};

MigrationReport ApplyMigrations(const std::string& dsn, const std::vector<Migration>& migrations);

}  // namespace procnode
