#include "reports/pdf_report.h"

#include <hpdf.h>

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
      NeedSpace(48);
      y_ -= 14;
      Text(bold_, 13, kMargin, y_, section.heading, 0.1f);
      y_ -= 6;
      Rule(y_, 0.6f);
      y_ -= 16;
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
