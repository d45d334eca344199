#include "pg/dsn.h"

#include <cctype>
#include <map>
#include <sstream>

namespace procnode {
namespace {

bool IsUri(const std::string& dsn) { return dsn.rfind("postgresql://", 0) == 0 || dsn.rfind("postgres://", 0) == 0; }

// key=value pairs of a libpq keyword string (values may be single-quoted, with \' and \\).
std::map<std::string, std::string> Keywords(const std::string& dsn) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i < dsn.size()) {
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) ++i;
    const std::size_t eq = dsn.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = dsn.substr(i, eq - i);
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    i = eq + 1;
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) ++i;
    std::string value;
    if (i < dsn.size() && dsn[i] == '\'') {
      for (++i; i < dsn.size() && dsn[i] != '\''; ++i) {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value.push_back(dsn[i]);
      }
      ++i;
    } else {
      while (i < dsn.size() && !std::isspace(static_cast<unsigned char>(dsn[i]))) value.push_back(dsn[i++]);
    }
    out[key] = value;
  }
  return out;
}

// The query parameters of a URI, by name (not decoded: only their presence matters here).
bool UriHasParameter(const std::string& dsn, const std::string& name) {
  const auto query = dsn.find('?');
  if (query == std::string::npos) return false;
  std::istringstream in(dsn.substr(query + 1));
  for (std::string pair; std::getline(in, pair, '&');) {
    if (pair.substr(0, pair.find('=')) == name) return true;
  }
  return false;
}

}  // namespace

std::string WithSessionDefaults(const std::string& dsn, int connect_timeout_seconds, int statement_timeout_seconds) {
  const std::string statement = "-c statement_timeout=" + std::to_string(statement_timeout_seconds * 1000);
  if (IsUri(dsn)) {
    std::string out = dsn;
    auto add = [&](const std::string& pair) { out += (out.find('?') == std::string::npos ? "?" : "&") + pair; };
    if (!UriHasParameter(dsn, "connect_timeout")) add("connect_timeout=" + std::to_string(connect_timeout_seconds));
    if (!UriHasParameter(dsn, "options")) add("options=-c%20statement_timeout%3D" + std::to_string(statement_timeout_seconds * 1000));
    return out;
  }
  const auto keywords = Keywords(dsn);
  std::string out = dsn;
  if (!keywords.contains("connect_timeout")) out += " connect_timeout=" + std::to_string(connect_timeout_seconds);
  if (!keywords.contains("options")) out += " options='" + statement + "'";
  return out;
}

std::string DescribeDsn(const std::string& dsn) {
  if (IsUri(dsn)) {
    std::string rest = dsn.substr(dsn.find("://") + 3);
    rest = rest.substr(0, rest.find('?'));
    const auto at = rest.rfind('@');
    if (at != std::string::npos) rest = rest.substr(at + 1);
    return rest.empty() ? "the default server" : rest;
  }
  const auto keywords = Keywords(dsn);
  auto get = [&](const char* key, const char* fallback) {
    const auto it = keywords.find(key);
    return it == keywords.end() ? std::string(fallback) : it->second;
  };
  return get("host", get("hostaddr", "localhost").c_str()) + ":" + get("port", "5432") + "/" + get("dbname", "(default)");
}

}  // namespace procnode
