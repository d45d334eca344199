// The leak checker: given PHI terms (names and their parts, IDs, dates in their usual spellings),
// it reports every place they occur: every element of a DICOM object (sequences, private
// attributes and binary values included), any file's bytes (NIfTI headers, JSON sidecars, reports),
// and file names. Reports name the place and the term's index, never the PHI itself, so they can be
// logged. Case-insensitive; terms of fewer than 5 characters match whole words only; binary values
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

// Term helpers, shared with the de-identifier (which collects and masks the same terms):
// offsets of `upper_term` in `upper_text` (both upper case), with `whole_word` only where no letter
// or digit adjoins it; a person name's parts cut at any of `separators` (empty parts included); a
// birth date (YYYYMMDD) in its usual spellings, itself first (none unless 8 characters).
std::vector<std::size_t> TermOffsets(const std::string& upper_text, const std::string& upper_term, bool whole_word);
std::vector<std::string> NameParts(const std::string& name, const std::string& separators);
std::vector<std::string> BirthDateForms(const std::string& date);

std::vector<LeakHit> ScanDataset(DcmItem& dataset, const std::vector<std::string>& terms, const std::string& name);
std::vector<LeakHit> ScanBytes(const std::string& bytes, const std::vector<std::string>& terms, const std::string& name);
std::vector<LeakHit> ScanFileName(const std::string& file_name, const std::vector<std::string>& terms);

}  // namespace procnode
