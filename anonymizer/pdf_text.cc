#include "anonymizer/pdf_text.h"

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <memory>
#include <mutex>

namespace procnode {
namespace {

void Silence(const std::string&, void*) {}

}  // namespace

bool LooksLikePdf(std::string_view bytes) { return bytes.substr(0, 5) == "%PDF-"; }

std::optional<std::string> PdfText(std::string_view pdf) {
  static std::once_flag once;
  std::call_once(once, [] { poppler::set_debug_error_function(Silence, nullptr); });
  if (!LooksLikePdf(pdf)) return std::nullopt;
  // poppler reads `pdf` in place: it outlives the document, which ends with this call.
  std::unique_ptr<poppler::document> document(poppler::document::load_from_raw_data(pdf.data(), static_cast<int>(pdf.size())));
  if (!document || document->is_locked()) return std::nullopt;
  std::string text;
  for (int i = 0; i < document->pages(); ++i) {
    std::unique_ptr<poppler::page> page(document->create_page(i));
    if (!page) continue;
    const poppler::byte_array utf8 = page->text().to_utf8();
    text.append(utf8.begin(), utf8.end());
    text += '\f';
  }
  for (const auto& key : document->info_keys()) {
    const poppler::byte_array utf8 = document->info_key(key).to_utf8();
    text.append(utf8.begin(), utf8.end());
    text += '\n';
  }
  return text;
}

}  // namespace procnode
