#include "jobs/test_database.h"

#include <gtest/gtest.h>

#include <fstream>
#include <pqxx/pqxx>
#include <random>

#include "pg/migrations.h"

namespace procnode::testing {

std::string FreshDatabase(bool migrate) {
  const char* dir = std::getenv("PROCNODE_TEST_PG_DIR");
  std::ifstream in(std::string(dir ? dir : "") + "/dsn");
  std::string admin_dsn;
  if (!dir || !std::getline(in, admin_dsn) || admin_dsn.empty()) {
    ADD_FAILURE() << "no test PostgreSQL: run through ctest (fixture 'postgres') or start one with "
                     "tests/harness/pgcluster.py start DIR and set PROCNODE_TEST_PG_DIR=DIR";
    throw std::runtime_error("no test PostgreSQL");
  }
  static std::mt19937_64 random{std::random_device{}()};
  const std::string name = "t_" + std::to_string(random() % 1'000'000'000'000ULL);
  {
    pqxx::connection admin(admin_dsn);
    pqxx::nontransaction tx(admin);
    tx.exec("CREATE DATABASE " + name);
  }
  const std::string dsn = admin_dsn.substr(0, admin_dsn.rfind('/') + 1) + name;
  if (migrate) ApplyMigrations(dsn, JobDbMigrations());
  return dsn;
}

}  // namespace procnode::testing
