#include "anonymizer/leak_checker.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>

#include "anonymizer/dicom_text.h"
#include "anonymizer/name_match.h"
#include "anonymizer/pdf_text.h"
#include "core/text.h"

namespace procnode {
namespace {

std::string TagText(const DcmTagKey& tag) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "(%04X,%04X)", tag.getGroup(), tag.getElement());
  return buffer;
}

// The terms prepared for matching (folded; whole words where shorter than five code points and
// not in an unspaced script), with their original byte lengths for the binary-value rule.
struct Terms {
  std::vector<NameTerm> prepared;
  std::vector<std::size_t> bytes;
};

Terms Prepare(const std::vector<std::string>& terms) {
  Terms out;
  for (const auto& t : terms) {
    out.prepared.push_back(PrepareTerm(t, 5));
    out.bytes.push_back(t.size());
  }
  return out;
}

// One hit at `where` for each term (of `min_bytes` bytes or more) that occurs in `folded`.
void MatchTerms(const std::string& folded, const Terms& terms, std::size_t min_bytes, const std::string& where,
                std::vector<LeakHit>& hits) {
  for (std::size_t t = 0; t < terms.prepared.size(); ++t) {
    if (terms.bytes[t] >= min_bytes && ContainsTerm(folded, terms.prepared[t])) hits.push_back({where, static_cast<int>(t)});
  }
}

void ScanPdfText(const std::string& pdf, const Terms& terms, const std::string& where, std::vector<LeakHit>& hits) {
  const auto text = PdfText(pdf);
  if (!text) {
    hits.push_back({where + ": unreadable, so it cannot be cleared", -1});
    return;
  }
  MatchTerms(FoldTerm(*text), terms, 0, where, hits);
}

void Scan(DcmItem& item, const Terms& terms, const std::string& path, DicomTextDecoder& decoder, std::vector<LeakHit>& hits) {
  for (unsigned long i = 0; i < item.card(); ++i) {
    DcmElement* el = item.getElement(i);
    const std::string here = path + (path.empty() ? "" : "/") + TagText(el->getTag());
    if (el->ident() == EVR_SQ) {
      auto* sq = static_cast<DcmSequenceOfItems*>(el);
      for (unsigned long k = 0; k < sq->card(); ++k) {
        DcmItem& child = *sq->getItem(k);
        const std::string at = here + "[" + std::to_string(k + 1) + "]";
        if (child.tagExists(DCM_SpecificCharacterSet)) {  // an item may declare its own set (PS3.5 6.1.2.5.3)
          DicomTextDecoder own(child);
          Scan(child, terms, at, own, hits);
        } else {
          Scan(child, terms, at, decoder, hits);
        }
      }
      continue;
    }
    if (el->getTag() == DCM_PixelData) continue;  // pixels are not text (burned-in text is refused or cleaned)
    std::string value;
    OFString text;
    // Binary values (OB, UN, private blobs, an encapsulated PDF) are searched as bytes, for terms
    // long enough (6+ bytes) not to turn up by chance in compressed data.
    Uint8* bytes = nullptr;
    const bool binary = (el->ident() == EVR_OB || el->ident() == EVR_UN) && el->getUint8Array(bytes).good() && bytes != nullptr;
    if (binary) {
      value.assign(reinterpret_cast<const char*>(bytes), el->getLength());
    } else if (el->getOFStringArray(text).good()) {
      const auto decoded = decoder.Decode(std::string(text.c_str(), text.length()), el->ident());
      if (!decoded) {
        hits.push_back({here + ": text not decodable from Specific Character Set \"" + decoder.declared() +
                            "\", so it cannot be cleared",
                        -1});
        continue;
      }
      value = *decoded;
    }
    MatchTerms(FoldTerm(value), terms, binary ? 6 : 0, here, hits);
    // An encapsulated PDF is also read as a reader sees it: its pages' text, every term.
    if (binary && LooksLikePdf(value)) ScanPdfText(value, terms, here + " PDF text", hits);
  }
}

}  // namespace

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
    if ((term.size() >= 3 || (!term.empty() && IsUnspacedScript(term))) && !IsPlaceholder(term) &&
        std::find(terms.begin(), terms.end(), term) == terms.end()) {
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
  DicomTextDecoder decoder(dataset);
  Scan(dataset, Prepare(terms), "", decoder, hits);
  for (auto& hit : hits) hit.where = name + " " + hit.where;
  return hits;
}

std::vector<LeakHit> ScanBytes(const std::string& bytes, const std::vector<std::string>& terms, const std::string& name) {
  std::vector<LeakHit> hits;
  const FoldedText text = FoldText(bytes);
  const auto prepared = Prepare(terms);
  for (std::size_t t = 0; t < prepared.prepared.size(); ++t) {
    for (const auto& [at, end] : FindTerm(text, prepared.prepared[t])) {
      hits.push_back({name + " byte " + std::to_string(at), static_cast<int>(t)});
    }
  }
  if (LooksLikePdf(bytes)) ScanPdfText(bytes, prepared, name + " PDF text", hits);
  return hits;
}

std::vector<LeakHit> ScanFileName(const std::string& file_name, const std::vector<std::string>& terms) {
  auto hits = ScanBytes(file_name, terms, "file name");
  for (auto& hit : hits) hit.where = "file name";
  return hits;
}

}  // namespace procnode
