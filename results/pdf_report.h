// A one-or-more-page PDF report from plain content (libharu), returned as bytes.
//
// Text is UTF-8 and rendered with an embedded DejaVu Sans when the font file exists, otherwise
// with the standard Helvetica (Latin-1 only). Rows that do not fit on a page continue on the
// next. Throws Error(kInternal) with libharu's error code when rendering fails. Thread-safe (each
// call owns its document).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/report_section.h"

namespace procnode {

struct ReportContent {
  std::string title;
  std::string subtitle;
  std::vector<ReportSection> sections;
  std::string footer;  // printed at the bottom of every page
};

std::string RenderPdfReport(const ReportContent& content, const std::string& font_path);

}  // namespace procnode
