// The text a reader sees in a PDF: every page's text (poppler), plus the document information
// strings (title, author, subject, keywords, creator, producer). A PDF's page text usually sits in
// compressed content streams, drawn with embedded fonts as glyph numbers, so its bytes never show
// a name: the leak checker needs this to read a report. Thread-safe (each call owns its document);
// poppler's own diagnostics are silenced (they could quote the document).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace procnode {

// UTF-8 text, pages separated by form feeds, then the information strings one per line; nullopt
// when the bytes are not a PDF poppler can open (damaged, or encrypted with a password).
std::optional<std::string> PdfText(std::string_view pdf);

// Whether `bytes` start like a PDF file ("%PDF-").
bool LooksLikePdf(std::string_view bytes);

}  // namespace procnode
