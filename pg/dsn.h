// PostgreSQL connection strings as procnode uses them (job database and PHI vault).
//
// WithSessionDefaults() adds what a service needs that libpq does not default: a connect timeout
// (libpq waits for ever on a server that accepts the TCP connection and never answers, which hung
// Orthanc's start-up), and a statement timeout so that no query holds a thread for ever. Values
// the DSN sets itself are kept. Both DSN forms are handled: URIs (postgresql://...) and key=value
// strings. DescribeDsn() names the server and database for logs, without user or password. Pure.
#pragma once

#include <string>

namespace procnode {

std::string WithSessionDefaults(const std::string& dsn, int connect_timeout_seconds, int statement_timeout_seconds);

// "host:port/database" (or what of it the DSN gives); never the user name or password.
std::string DescribeDsn(const std::string& dsn);

}  // namespace procnode
