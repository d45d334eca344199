// The admin page's files (web/), compiled into the plugin so it needs no files or network at run time.
#pragma once

#include <map>
#include <string>

namespace procnode {

struct WebAsset {
  std::string mime;
  std::string content;
};

const std::map<std::string, WebAsset>& WebAssets();

}  // namespace procnode
