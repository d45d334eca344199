// A titled table of label/value rows: what processors say about their results, and what the PDF
// report prints.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace procnode {

struct ReportSection {
  std::string heading;
  std::vector<std::pair<std::string, std::string>> rows;  // label, value
};

}  // namespace procnode
