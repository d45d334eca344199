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

}  // namespace procnode::pg
