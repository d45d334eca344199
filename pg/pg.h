// PostgreSQL for procnode (job database, PHI vault): one connection pool and one transaction
// wrapper, so that every database call maps its errors the same way. libpqxx appears only in pg/
// and in the adapter files that run SQL (the job queue, the vault).
//
//   pg::ConnectionPool pool(dsn, "job database");
//   const int n = pg::Transaction(pool, "count jobs", [](pqxx::work& tx) {
//     return tx.exec1("SELECT count(*) FROM jobs")[0].as<int>();
//   });
//
// A transaction that body() leaves by an exception is rolled back (pqxx::work's destructor) and
// its connection is dropped, never reused. Errors: a lost or refused connection (the server is
// down, restarting, or does not answer within connect_timeout), a commit cut off by it and a
// server shutting down are Error(kUnavailable, "NAME: WHAT: connection lost: ..."), retryable;
// another SQL error is Error(kInternal, "NAME: WHAT: ..."); errors body() throws itself pass
// unchanged (see RethrowAsError). Thread-safe: each call borrows its own connection.
#pragma once

#include <pqxx/pqxx>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

namespace procnode::pg {

class ConnectionPool {
 public:
  // `name` says which database in messages ("job database", "PHI vault"); at most `max_idle`
  // idle connections are kept.
  ConnectionPool(std::string dsn, std::string name, std::size_t max_idle = 16);

  std::unique_ptr<pqxx::connection> Borrow();
  void Return(std::unique_ptr<pqxx::connection> connection);
  const std::string& name() const { return name_; }

 private:
  std::string dsn_, name_;
  std::size_t max_idle_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
};

// Turns the exception in flight (inside a catch block) into an Error that names the pool and
// `what`: a lost connection, a commit whose outcome is unknown, a server shutting down (SQLSTATE
// class 57 or 08) or a serialization failure is kUnavailable; any other SQL or library error is
// kInternal; an Error passes unchanged. Never lets a pqxx or standard exception through, so that
// no thread of the node can die of one.
[[noreturn]] void RethrowAsError(const ConnectionPool& pool, const char* what);
// The same with the message's start given ("NAME: WHAT: "), for code that holds its own connection.
[[noreturn]] void RethrowAsError(const std::string& prefix);

template <typename F>
auto Transaction(ConnectionPool& pool, const char* what, F&& body) {
  try {
    std::unique_ptr<pqxx::connection> connection = pool.Borrow();
    pqxx::work tx(*connection);
    auto result = body(tx);
    tx.commit();
    pool.Return(std::move(connection));
    return result;
  } catch (...) {
    RethrowAsError(pool, what);
  }
}

}  // namespace procnode::pg
