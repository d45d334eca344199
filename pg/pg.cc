#include "pg/pg.h"

namespace procnode::pg {

ConnectionPool::ConnectionPool(std::string dsn, std::string name, std::size_t max_idle)
    : dsn_(std::move(dsn)), name_(std::move(name)), max_idle_(max_idle) {}

std::unique_ptr<pqxx::connection> ConnectionPool::Borrow() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
  }
  return std::make_unique<pqxx::connection>(dsn_);
}

void ConnectionPool::Return(std::unique_ptr<pqxx::connection> connection) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(connection));
}

void RethrowAsError(const ConnectionPool& pool, const char* what) {
  RethrowAsError(pool.name() + ": " + what + ": ");
}

void RethrowAsError(const std::string& prefix) {
  try {
    throw;
  } catch (const Error&) {
    throw;
  } catch (const pqxx::broken_connection& e) {
    throw Error(ErrorCode::kUnavailable, prefix + "connection lost: " + e.what());
  } catch (const pqxx::in_doubt_error& e) {
    // The connection went during COMMIT: the server may or may not have applied it. Every caller's
    // statements are idempotent or guarded by state, so trying again is safe.
    throw Error(ErrorCode::kUnavailable, prefix + "connection lost during commit (outcome unknown): " + e.what());
  } catch (const pqxx::transaction_rollback& e) {
    throw Error(ErrorCode::kUnavailable, prefix + "rolled back by the server, to be tried again: " + e.what());
  } catch (const pqxx::sql_error& e) {
    // Class 57 (operator intervention: shutdown, crash, not accepting connections yet) and 08
    // (connection exception) mean the server is going or gone, not that the statement is wrong.
    const std::string state = e.sqlstate();
    if (state.rfind("57", 0) == 0 || state.rfind("08", 0) == 0) {
      throw Error(ErrorCode::kUnavailable, prefix + "connection lost: " + e.what());
    }
    throw Error(ErrorCode::kInternal, prefix + e.what());
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInternal, prefix + e.what());
  } catch (...) {
    throw Error(ErrorCode::kInternal, prefix + "unknown error");
  }
}

}  // namespace procnode::pg
