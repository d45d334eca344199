#include "pg/migrations.h"

#include <pqxx/pqxx>

#include <algorithm>

#include "core/error.h"
#include "pg/pg.h"

namespace procnode {

MigrationReport ApplyMigrations(const std::string& dsn, const std::vector<Migration>& migrations,
                                const std::string& name) {
  MigrationReport report;
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  try {
    pqxx::connection connection(dsn);
    pqxx::work tx(connection);
    tx.exec("SELECT pg_advisory_xact_lock(7238510001)");  // procnode migrations
    tx.exec(
        "CREATE TABLE IF NOT EXISTS procnode_schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    const auto current = tx.exec("SELECT coalesce(max(version), 0) FROM procnode_schema_migrations");
    report.from_version = current[0][0].as<int>();
    if (report.from_version > latest) {
      throw Error(ErrorCode::kUnsupported,
                  name + " schema is at version " + std::to_string(report.from_version) +
                      ", newer than this procnode knows (" + std::to_string(latest) +
                      "): upgrade procnode, or point procnode at another database");
    }
    for (const auto& migration : migrations) {
      if (migration.version <= report.from_version) continue;
      try {
        tx.exec(migration.sql);
      } catch (const pqxx::sql_error& e) {
        throw Error(ErrorCode::kInternal,
                    name + " migration " + migration.name + " failed: " + e.what());
      }
      tx.exec_params("INSERT INTO procnode_schema_migrations (version, name) VALUES ($1, $2)",
                     migration.version, std::string(migration.name));
      report.applied.emplace_back(migration.name);
    }
    tx.commit();
    report.to_version = std::max(report.from_version, latest);
  } catch (const pqxx::broken_connection& e) {
    throw Error(ErrorCode::kUnavailable, name + " unreachable: " + e.what());
  } catch (...) {
    pg::RethrowAsError(name + " migration: ");
  }
  return report;
}

}  // namespace procnode
