#include "anonymizer/leak_checker.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "anonymizer/pdf_text.h"
#include "core/text.h"

namespace procnode {
namespace {

std::string TagText(const DcmTagKey& tag) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "(%04X,%04X)", tag.getGroup(), tag.getElement());
  return buffer;
}

// Offsets of `term` in `haystack` (both upper case), whole words for short terms.
std::vector<std::size_t> Find(const std::string& haystack, const std::string& term) {
  if (term.empty()) return {};
  return TermOffsets(haystack, term, term.size() < 5);
}

// One hit at `where` for each term (of `min_length` characters or more) that occurs in `upper`.
void MatchTerms(const std::string& upper, const std::vector<std::string>& upper_terms, std::size_t min_length,
                const std::string& where, std::vector<LeakHit>& hits) {
  for (std::size_t t = 0; t < upper_terms.size(); ++t) {
    if (upper_terms[t].size() >= min_length && !Find(upper, upper_terms[t]).empty()) hits.push_back({where, static_cast<int>(t)});
  }
}

void ScanPdfText(const std::string& pdf, const std::vector<std::string>& upper_terms, const std::string& where,
                 std::vector<LeakHit>& hits) {
  const auto text = PdfText(pdf);
  if (!text) {
    hits.push_back({where + ": unreadable, so it cannot be cleared", -1});
    return;
  }
  MatchTerms(UpperCase(*text), upper_terms, 0, where, hits);
}

void Scan(DcmItem& item, const std::vector<std::string>& upper_terms, const std::string& path, std::vector<LeakHit>& hits) {
  for (unsigned long i = 0; i < item.card(); ++i) {
    DcmElement* el = item.getElement(i);
    const std::string here = path + (path.empty() ? "" : "/") + TagText(el->getTag());
    if (el->ident() == EVR_SQ) {
      auto* sq = static_cast<DcmSequenceOfItems*>(el);
      for (unsigned long k = 0; k < sq->card(); ++k) Scan(*sq->getItem(k), upper_terms, here + "[" + std::to_string(k + 1) + "]", hits);
      continue;
    }
    if (el->getTag() == DCM_PixelData) continue;  // pixels are not text (burned-in text is refused or cleaned)
    std::string value;
    OFString text;
    // Binary values (OB, UN, private blobs, an encapsulated PDF) are searched as bytes, for terms
    // long enough (6+ characters) not to turn up by chance in compressed data.
    Uint8* bytes = nullptr;
    const bool binary = (el->ident() == EVR_OB || el->ident() == EVR_UN) && el->getUint8Array(bytes).good() && bytes != nullptr;
    if (binary) {
      value.assign(reinterpret_cast<const char*>(bytes), el->getLength());
    } else if (el->getOFStringArray(text).good()) {
      value = text.c_str();
    }
    MatchTerms(UpperCase(value), upper_terms, binary ? 6 : 0, here, hits);
    // An encapsulated PDF is also read as a reader sees it: its pages' text, every term.
    if (binary && LooksLikePdf(value)) ScanPdfText(value, upper_terms, here + " PDF text", hits);
  }
}

std::vector<std::string> UpperTerms(const std::vector<std::string>& terms) {
  std::vector<std::string> out;
  for (const auto& t : terms) out.push_back(UpperCase(t));
  return out;
}

}  // namespace

std::vector<std::size_t> TermOffsets(const std::string& upper_text, const std::string& upper_term, bool whole_word) {
  std::vector<std::size_t> at;
  auto alnum = [&](std::size_t k) { return std::isalnum(static_cast<unsigned char>(upper_text[k])) != 0; };
  for (std::size_t i = upper_text.find(upper_term); i != std::string::npos; i = upper_text.find(upper_term, i + 1)) {
    if (whole_word && ((i > 0 && alnum(i - 1)) || (i + upper_term.size() < upper_text.size() && alnum(i + upper_term.size())))) {
      continue;
    }
    at.push_back(i);
  }
  return at;
}

std::vector<std::string> NameParts(const std::string& name, const std::string& separators) {
  std::vector<std::string> parts(1);
  for (const char c : name) {
    if (separators.find(c) != std::string::npos) {
      parts.emplace_back();
    } else {
      parts.back().push_back(c);
    }
  }
  return parts;
}

std::vector<std::string> BirthDateForms(const std::string& date) {
  if (date.size() != 8) return {};
  const std::string y = date.substr(0, 4), m = date.substr(4, 2), d = date.substr(6, 2);
  return {date, y + "-" + m + "-" + d, d + "." + m + "." + y, m + "/" + d + "/" + y, d + "/" + m + "/" + y};
}

bool IsPlaceholder(const std::string& term) {
  static const char* const kPlaceholders[] = {"ANONYMIZED", "ANONYMOUS", "ANON", "UNKNOWN", "NONE", "TEST", "N/A",
                                              "NULL", "PATIENT", "REMOVED", "PSEUDONYMIZED", "DE-IDENTIFIED"};
  const std::string upper = UpperCase(term);
  return std::any_of(std::begin(kPlaceholders), std::end(kPlaceholders), [&](const char* p) { return upper == p; });
}

std::vector<std::string> PhiTerms(const PatientIdentity& id, const std::vector<std::string>& extra) {
  std::vector<std::string> terms;
  auto add = [&](const std::string& term) {
    if (term.size() >= 3 && !IsPlaceholder(term) && std::find(terms.begin(), terms.end(), term) == terms.end()) {
      terms.push_back(term);
    }
  };
  add(id.patient_name);
  for (const auto& part : NameParts(id.patient_name, "^ =")) add(part);
  add(id.patient_id);
  add(id.accession_number);
  for (const auto& form : BirthDateForms(id.birth_date)) add(form);
  for (const auto& term : extra) add(term);
  return terms;
}

std::vector<LeakHit> ScanDataset(DcmItem& dataset, const std::vector<std::string>& terms, const std::string& name) {
  std::vector<LeakHit> hits;
  Scan(dataset, UpperTerms(terms), "", hits);
  for (auto& hit : hits) hit.where = name + " " + hit.where;
  return hits;
}

std::vector<LeakHit> ScanBytes(const std::string& bytes, const std::vector<std::string>& terms, const std::string& name) {
  std::vector<LeakHit> hits;
  const std::string upper = UpperCase(bytes);
  const auto upper_terms = UpperTerms(terms);
  for (std::size_t t = 0; t < upper_terms.size(); ++t) {
    for (const auto at : Find(upper, upper_terms[t])) hits.push_back({name + " byte " + std::to_string(at), static_cast<int>(t)});
  }
  if (LooksLikePdf(bytes)) ScanPdfText(bytes, upper_terms, name + " PDF text", hits);
  return hits;
}

std::vector<LeakHit> ScanFileName(const std::string& file_name, const std::vector<std::string>& terms) {
  auto hits = ScanBytes(file_name, terms, "file name");
  for (auto& hit : hits) hit.where = "file name";
  return hits;
}

}  // namespace procnode
