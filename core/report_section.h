// A titled block of a PDF report: label/value rows, and optionally a paragraph, a table, key
// images and a histogram. What processors say about their results, and what the PDF prints.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace procnode {

// A text label drawn over an image, at fractions of its width and height from the top left.
struct ImageMark {
  double x = 0, y = 0;
  std::string text;
};

struct ReportImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes a pixel
  std::string caption;
  std::vector<ImageMark> marks;
};

struct ReportTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // first column: the row label
};

struct ReportHistogram {
  std::vector<double> counts;  // one per bin
  double first = 0, step = 1;  // value at the start of bin 0, bin width
  std::string x_label;
  std::vector<std::pair<double, std::string>> markers;  // vertical lines at values, with labels
};

struct LegendEntry {
  std::array<int, 3> rgb{0, 0, 0};
  std::string label;
};

struct ReportSection {
  std::string heading;
  std::vector<std::pair<std::string, std::string>> rows;  // label, value
  std::string paragraph;
  ReportTable table;
  std::vector<ReportImage> images;
  std::vector<LegendEntry> legend;
  ReportHistogram histogram;
};

}  // namespace procnode
