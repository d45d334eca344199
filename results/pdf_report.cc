#include "results/pdf_report.h"

#include <hpdf.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/error.h"

namespace procnode {
namespace {

struct HaruError {
  HPDF_STATUS code = HPDF_OK;
  HPDF_STATUS detail = 0;
};

void OnHaruError(HPDF_STATUS code, HPDF_STATUS detail, void* user) {
  auto* error = static_cast<HaruError*>(user);
  if (error->code == HPDF_OK) *error = {code, detail};  // keep the first error
}

constexpr float kPageWidth = 595.0f, kPageHeight = 842.0f;  // A4 in points
constexpr float kMargin = 56.0f;
constexpr float kValueIndent = 170.0f;

class Writer {
 public:
  Writer(HPDF_Doc doc, HPDF_Font regular, HPDF_Font bold, const ReportContent& content)
      : doc_(doc), regular_(regular), bold_(bold), content_(content) {}

  void Render() {
    NewPage();
    Text(bold_, 20, kMargin, y_, content_.title);
    y_ -= 24;
    if (!content_.subtitle.empty()) {
      Text(regular_, 11, kMargin, y_, content_.subtitle, 0.35f);
      y_ -= 18;
    }
    for (const auto& section : content_.sections) {
      NeedSpace(40 + (section.images.empty() ? 0 : 120) + (section.histogram.counts.empty() ? 0 : 130));
      y_ -= 14;
      Text(bold_, 13, kMargin, y_, section.heading, 0.1f);
      y_ -= 6;
      Rule(y_, 0.6f);
      y_ -= 16;
      if (!section.images.empty()) Images(section.images, section.legend);
      if (!section.table.header.empty()) Table(section.table);
      if (!section.histogram.counts.empty()) Histogram(section.histogram);
      if (!section.paragraph.empty()) {
        for (const auto& line : Wrap(regular_, 10, section.paragraph, kPageWidth - 2 * kMargin)) {
          NeedSpace(14);
          Text(regular_, 10, kMargin, y_, line);
          y_ -= 14;
        }
        y_ -= 4;
      }
      for (const auto& [label, value] : section.rows) {
        const auto lines = Wrap(regular_, 10, value, kPageWidth - kMargin - (kMargin + kValueIndent));
        NeedSpace(4 + 14.0f * lines.size());
        Text(regular_, 10, kMargin, y_, label, 0.35f);
        for (const auto& line : lines) {
          Text(regular_, 10, kMargin + kValueIndent, y_, line);
          y_ -= 14;
        }
        y_ -= 2;
      }
    }
  }

 private:
  void NewPage() {
    page_ = HPDF_AddPage(doc_);
    HPDF_Page_SetWidth(page_, kPageWidth);
    HPDF_Page_SetHeight(page_, kPageHeight);
    HPDF_Page_SetRGBFill(page_, 0.12f, 0.23f, 0.37f);
    HPDF_Page_Rectangle(page_, 0, kPageHeight - 28, kPageWidth, 28);
    HPDF_Page_Fill(page_);
    Text(bold_, 10, kMargin, kPageHeight - 18, "procnode", 1.0f);
    Text(regular_, 8, kMargin, 30, content_.footer, 0.45f);
    Rule(44, 0.3f);
    y_ = kPageHeight - 72;
  }

  // Images side by side across the text width, captions under them, then the colour legend.
  void Images(const std::vector<ReportImage>& images, const std::vector<LegendEntry>& legend) {
    const float gap = 12;
    const float width = (kPageWidth - 2 * kMargin - gap * (images.size() - 1)) / images.size();
    float tallest = 0;
    for (const auto& image : images) tallest = std::max(tallest, width * image.height / std::max(1, image.width));
    const float max_height = 165;
    const float scale = tallest > max_height ? max_height / tallest : 1.0f;
    NeedSpace(tallest * scale + 40);
    float x = kMargin;
    for (const auto& image : images) {
      const float w = width * scale, h = w * image.height / std::max(1, image.width);
      HPDF_Image picture = HPDF_LoadRawImageFromMem(doc_, image.rgb.data(), image.width, image.height, HPDF_CS_DEVICE_RGB, 8);
      if (picture != nullptr) HPDF_Page_DrawImage(page_, picture, x, y_ - h, w, h);
      for (const auto& mark : image.marks) {  // white on the image, left of its point
        HPDF_Page_SetFontAndSize(page_, bold_, 6.5f);
        const float tw = HPDF_Page_TextWidth(page_, mark.text.c_str());
        Text(bold_, 6.5f, std::max(x, x + static_cast<float>(mark.x) * w - tw - 6), y_ - static_cast<float>(mark.y) * h - 2.5f,
             mark.text, 1.0f);
      }
      Text(regular_, 8.5f, x, y_ - h - 11, image.caption, 0.35f);
      x += w + gap;
    }
    y_ -= tallest * scale + 26;
    x = kMargin;
    for (const auto& entry : legend) {
      HPDF_Page_SetFontAndSize(page_, regular_, 9);
      if (x > kMargin && x + 13 + HPDF_Page_TextWidth(page_, entry.label.c_str()) > kPageWidth - kMargin) {  // wrap
        y_ -= 14;
        x = kMargin;
        NeedSpace(14);
      }
      HPDF_Page_SetRGBFill(page_, entry.rgb[0] / 255.0f, entry.rgb[1] / 255.0f, entry.rgb[2] / 255.0f);
      HPDF_Page_Rectangle(page_, x, y_ - 1, 9, 9);
      HPDF_Page_Fill(page_);
      Text(regular_, 9, x + 13, y_, entry.label, 0.2f);
      HPDF_Page_SetFontAndSize(page_, regular_, 9);
      x += 13 + HPDF_Page_TextWidth(page_, entry.label.c_str()) + 18;
    }
    if (!legend.empty()) y_ -= 18;
  }

  // Columns: the first as wide as its longest label, the others sharing the rest, right-aligned.
  void Table(const ReportTable& table) {
    HPDF_Page_SetFontAndSize(page_, regular_, 10);
    float first = 0;
    for (const auto& row : table.rows) first = std::max(first, HPDF_Page_TextWidth(page_, row.front().c_str()));
    first += 16;
    const std::size_t columns = table.header.size();
    const float column = (kPageWidth - 2 * kMargin - first) / std::max<std::size_t>(1, columns - 1);
    auto line = [&](const std::vector<std::string>& cells, HPDF_Font font, float gray) {
      NeedSpace(16);
      for (std::size_t c = 0; c < cells.size() && c < columns; ++c) {
        if (c == 0) {
          Text(font, 10, kMargin, y_, cells[c], gray);
        } else {
          HPDF_Page_SetFontAndSize(page_, font, 10);
          const float w = HPDF_Page_TextWidth(page_, cells[c].c_str());
          Text(font, 10, kMargin + first + column * c - w - 6, y_, cells[c], gray);
        }
      }
      y_ -= 15;
    };
    line(table.header, bold_, 0.25f);
    Rule(y_ + 10, 0.3f);
    for (const auto& row : table.rows) line(row, regular_, 0.0f);
    y_ -= 4;
  }

  // Bars over the text width, markers as labelled vertical lines.
  void Histogram(const ReportHistogram& h) {
    const float height = 100, left = kMargin + 4, width = kPageWidth - 2 * kMargin - 8;
    NeedSpace(height + 40);
    const float bottom = y_ - height;
    // Scaled to the tallest bin but the first, which gathers everything below the range (air).
    const double peak = h.counts.size() > 1 ? *std::max_element(h.counts.begin() + 1, h.counts.end()) : h.counts.front();
    const float bar = width / h.counts.size();
    HPDF_Page_SetRGBFill(page_, 0.45f, 0.52f, 0.62f);
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
      const float bar_height = peak > 0 ? static_cast<float>(std::min(1.0, h.counts[i] / peak)) * height : 0;
      if (bar_height > 0) HPDF_Page_Rectangle(page_, left + i * bar, bottom, std::max(bar - 0.3f, 0.3f), bar_height);
    }
    HPDF_Page_Fill(page_);
    HPDF_Page_SetRGBStroke(page_, 0.2f, 0.2f, 0.2f);
    HPDF_Page_SetLineWidth(page_, 0.5f);
    HPDF_Page_MoveTo(page_, left, bottom);
    HPDF_Page_LineTo(page_, left + width, bottom);
    HPDF_Page_Stroke(page_);
    const double last = h.first + h.step * h.counts.size();
    auto x_of = [&](double value) { return left + static_cast<float>((value - h.first) / (last - h.first)) * width; };
    for (double tick = std::ceil(h.first / 100) * 100; tick <= last; tick += 100) {
      char label[16];
      std::snprintf(label, sizeof label, "%.0f", tick);
      HPDF_Page_SetFontAndSize(page_, regular_, 7.5f);
      Text(regular_, 7.5f, x_of(tick) - HPDF_Page_TextWidth(page_, label) / 2, bottom - 10, label, 0.35f);
    }
    int index = 0;
    for (const auto& [value, label] : h.markers) {
      const float x = x_of(value);
      HPDF_Page_SetRGBStroke(page_, 0.75f, 0.1f, 0.1f);
      HPDF_Page_SetLineWidth(page_, 0.8f);
      HPDF_Page_MoveTo(page_, x, bottom);
      HPDF_Page_LineTo(page_, x, bottom + height);
      HPDF_Page_Stroke(page_);
      Text(regular_, 7.5f, x + 2, bottom + height - 8 - 9 * index++, label, 0.15f);
    }
    Text(regular_, 8.5f, left, bottom - 22, h.x_label, 0.35f);
    y_ = bottom - 36;
  }

  // Splits `text` into lines no wider than `width` points, at spaces where possible.
  std::vector<std::string> Wrap(HPDF_Font font, float size, const std::string& text, float width) {
    HPDF_Page_SetFontAndSize(page_, font, size);
    std::vector<std::string> lines;
    std::string line;
    std::size_t start = 0;
    while (start <= text.size()) {
      std::size_t end = text.find(' ', start);
      if (end == std::string::npos) end = text.size();
      const std::string word = text.substr(start, end - start);
      const std::string candidate = line.empty() ? word : line + " " + word;
      if (!line.empty() && HPDF_Page_TextWidth(page_, candidate.c_str()) > width) {
        lines.push_back(line);
        line = word;
      } else {
        line = candidate;
      }
      start = end + 1;
    }
    lines.push_back(line);
    return lines;
  }

  void NeedSpace(float points) {
    if (y_ - points < 60) NewPage();
  }

  void Rule(float y, float width) {
    HPDF_Page_SetRGBStroke(page_, 0.6f, 0.65f, 0.7f);
    HPDF_Page_SetLineWidth(page_, width);
    HPDF_Page_MoveTo(page_, kMargin, y);
    HPDF_Page_LineTo(page_, kPageWidth - kMargin, y);
    HPDF_Page_Stroke(page_);
  }

  void Text(HPDF_Font font, float size, float x, float y, const std::string& text, float gray = 0.0f) {
    HPDF_Page_SetGrayFill(page_, gray);
    HPDF_Page_BeginText(page_);
    HPDF_Page_SetFontAndSize(page_, font, size);
    HPDF_Page_TextOut(page_, x, y, text.c_str());
    HPDF_Page_EndText(page_);
  }

  HPDF_Doc doc_;
  HPDF_Font regular_, bold_;
  const ReportContent& content_;
  HPDF_Page page_ = nullptr;
  float y_ = 0;
};

}  // namespace

std::string RenderPdfReport(const ReportContent& content, const std::string& font_path) {
  HaruError error;
  std::unique_ptr<std::remove_pointer_t<HPDF_Doc>, decltype(&HPDF_Free)> doc(
      HPDF_New(&OnHaruError, &error), &HPDF_Free);
  if (!doc) throw Error(ErrorCode::kInternal, "PDF report: libharu could not create a document");
  HPDF_SetCompressionMode(doc.get(), HPDF_COMP_ALL);
  HPDF_SetInfoAttr(doc.get(), HPDF_INFO_CREATOR, "procnode");
  HPDF_SetInfoAttr(doc.get(), HPDF_INFO_TITLE, content.title.c_str());

  HPDF_Font regular = nullptr, bold = nullptr;
  std::error_code ec;
  const std::string bold_path =
      (std::filesystem::path(font_path).parent_path() / "DejaVuSans-Bold.ttf").string();
  if (!font_path.empty() && std::filesystem::exists(font_path, ec)) {
    HPDF_UseUTFEncodings(doc.get());
    const char* regular_name = HPDF_LoadTTFontFromFile(doc.get(), font_path.c_str(), HPDF_TRUE);
    const char* bold_name = std::filesystem::exists(bold_path, ec)
                                ? HPDF_LoadTTFontFromFile(doc.get(), bold_path.c_str(), HPDF_TRUE)
                                : regular_name;
    if (regular_name != nullptr && bold_name != nullptr) {
      regular = HPDF_GetFont(doc.get(), regular_name, "UTF-8");
      bold = HPDF_GetFont(doc.get(), bold_name, "UTF-8");
    }
  }
  if (regular == nullptr || bold == nullptr) {
    HPDF_ResetError(doc.get());
    error = {};
    regular = HPDF_GetFont(doc.get(), "Helvetica", "WinAnsiEncoding");
    bold = HPDF_GetFont(doc.get(), "Helvetica-Bold", "WinAnsiEncoding");
  }
  Writer(doc.get(), regular, bold, content).Render();
  if (error.code == HPDF_OK) HPDF_SaveToStream(doc.get());
  if (error.code != HPDF_OK) {
    throw Error(ErrorCode::kInternal, "PDF report: libharu error 0x" + [&] {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%04X detail %u", static_cast<unsigned>(error.code),
                    static_cast<unsigned>(error.detail));
      return std::string(buffer);
    }());
  }
  std::string bytes(HPDF_GetStreamSize(doc.get()), '\0');
  HPDF_UINT32 size = static_cast<HPDF_UINT32>(bytes.size());
  HPDF_ReadFromStream(doc.get(), reinterpret_cast<HPDF_BYTE*>(bytes.data()), &size);
  bytes.resize(size);
  return bytes;
}

}  // namespace procnode
