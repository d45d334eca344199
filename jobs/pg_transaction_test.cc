// pg::Transaction against a real server: whatever the connection does mid-transaction, the caller
// gets an Error with the right code, never a pqxx exception (which would end a node thread, and
// Orthanc with it).
#include "pg/pg.h"

#include <gtest/gtest.h>

#include <functional>
#include <pqxx/pqxx>
#include <string>

#include "core/error.h"
#include "jobs/test_database.h"

namespace procnode {
namespace {

ErrorCode CodeOf(const std::function<void()>& f, std::string* message) {
  try {
    f();
  } catch (const Error& e) {
    *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no Error thrown";
  *message = "";
  return ErrorCode::kInvalidInput;
}

TEST(PgTransaction, ABackendTerminatedMidTransactionIsUnavailableAndTheNextCallWorks) {
  pg::ConnectionPool pool(testing::FreshDatabase(false), "job database");
  std::string message;
  EXPECT_EQ(CodeOf([&] {
              pg::Transaction(pool, "suicide", [](pqxx::work& tx) {
                return tx.exec("SELECT pg_terminate_backend(pg_backend_pid())").size();
              });
            }, &message),
            ErrorCode::kUnavailable);
  EXPECT_EQ(message.rfind("job database: suicide: connection lost", 0), 0u) << message;
  EXPECT_EQ(pg::Transaction(pool, "after", [](pqxx::work& tx) { return tx.exec1("SELECT 7")[0].as<int>(); }), 7);
}

TEST(PgTransaction, AConnectionCutBeforeCommitIsUnavailableNotACrash) {
  const std::string dsn = testing::FreshDatabase(false);
  {
    pqxx::connection c(dsn);
    pqxx::work tx(c);
    tx.exec("CREATE TABLE t (v int)");
    tx.commit();
  }
  pg::ConnectionPool pool(dsn, "job database");
  std::string message;
  EXPECT_EQ(CodeOf([&] {
              pg::Transaction(pool, "insert", [&](pqxx::work& tx) {
                tx.exec("INSERT INTO t VALUES (1)");
                const int pid = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
                pqxx::connection other(dsn);
                pqxx::nontransaction killer(other);
                killer.exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
                return 0;  // COMMIT then meets a closed connection
              });
            }, &message),
            ErrorCode::kUnavailable);
  EXPECT_NE(message.find("connection lost"), std::string::npos) << message;
  pqxx::connection c(dsn);
  pqxx::work tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM t")[0].as<int>(), 0) << "the cut transaction was not applied";
}

TEST(PgTransaction, SqlAndLibraryErrorsAreInternalAndTheBodysOwnErrorsPassUnchanged) {
  pg::ConnectionPool pool(testing::FreshDatabase(false), "job database");
  std::string message;
  EXPECT_EQ(CodeOf([&] { pg::Transaction(pool, "bad sql", [](pqxx::work& tx) { return tx.exec("SELEC 1").size(); }); },
                   &message),
            ErrorCode::kInternal);
  EXPECT_EQ(message.rfind("job database: bad sql: ", 0), 0u) << message;
  EXPECT_EQ(CodeOf([&] {
              pg::Transaction(pool, "conversion", [](pqxx::work& tx) { return tx.exec1("SELECT 'x'")[0].as<int>(); });
            }, &message),
            ErrorCode::kInternal);
  EXPECT_EQ(CodeOf([&] {
              pg::Transaction(pool, "own", [](pqxx::work&) -> int { throw Error(ErrorCode::kNotFound, "job 9 is gone"); });
            }, &message),
            ErrorCode::kNotFound);
  EXPECT_EQ(message, "job 9 is gone");
}

}  // namespace
}  // namespace procnode
