// The leak checker: given PHI terms (names and their parts, IDs, dates in their usual spellings),
// it reports every place they occur: every element of a DICOM object (sequences, private
// attributes and binary values included), any file's bytes (NIfTI headers, JSON sidecars, reports),
// and file names. Reports name the place and the term's index, never the PHI itself, so they can be
// logged. DICOM text is decoded from its Specific Character Set (code extensions included; text
// that cannot be decoded is itself a hit, term -1) and compared as Unicode after compatibility
// normalization and case folding (name_match.h): half-width katakana, full-width Latin and
// combining accents find their names. Terms of fewer than 5 code points match whole words only,
// except in scripts without spaces (Han, kana, Hangul, Thai), which match anywhere; binary values
// (OB, UN: private blobs, encapsulated documents) are searched for terms of 6+ characters, which
// compressed data does not produce by chance. A PDF (a file, or an encapsulated document) is also
// read as its reader sees it, page text and information strings (PdfText); one that cannot be read
// is itself a hit (term -1), since it cannot be cleared. Pure and thread-safe.
#pragma once

#include <dcmtk/dcmdata/dcitem.h>

#include <string>
#include <vector>

#include "anonymizer/deidentify.h"

namespace procnode {

struct LeakHit {
  std::string where;   // "file.dcm (0040,A730)[1]/(0040,A160)", "labels.json byte 120", "file name"
  int term = 0;        // index into the terms; -1: a document that could not be read to be checked
};

// Values that stand for no one ("ANONYMIZED", "ANONYMOUS", "UNKNOWN", "TEST", ...): never PHI terms,
// or every dummy value would be a leak.
bool IsPlaceholder(const std::string& term);

// The identity's terms and their variants (name parts, birth date spellings), plus `extra`.
std::vector<std::string> PhiTerms(const PatientIdentity& identity, const std::vector<std::string>& extra = {});

// Term helpers, shared with the de-identifier (which collects and masks the same terms; matching
// is name_match.h's): a person name's parts cut at any of `separators` (empty parts included); a
// birth date (YYYYMMDD) in its usual spellings, itself first (none unless 8 characters).
std::vector<std::string> NameParts(const std::string& name, const std::string& separators);
std::vector<std::string> BirthDateForms(const std::string& date);

std::vector<LeakHit> ScanDataset(DcmItem& dataset, const std::vector<std::string>& terms, const std::string& name);
std::vector<LeakHit> ScanBytes(const std::string& bytes, const std::vector<std::string>& terms, const std::string& name);
std::vector<LeakHit> ScanFileName(const std::string& file_name, const std::vector<std::string>& terms);

}  // namespace procnode
