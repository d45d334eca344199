// Encapsulated PDF Storage (PS3.3 A.45.1, SOP Class 1.2.840.10008.5.1.4.1.1.104.1) around a PDF,
// as a new series in the source study.
//
// Patient and General Study attributes are copied from the source (StudyIdentity) in its
// character set; the series is marked as procnode's (Manufacturer "procnode", see
// kResultManufacturer) so that it never becomes an input. UIDs come from the caller: pass
// deterministic ones (DerivedUid) so that a re-run job replaces its result instead of adding one.
// Throws Error(kInternal) with DCMTK's text when the object cannot be built. Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "processors/series_volume.h"

namespace procnode {

struct EncapsulatedPdfSpec {
  StudyIdentity study;
  std::string series_instance_uid;
  std::string sop_instance_uid;
  int series_number = 9001;
  std::string series_description;
  std::string document_title;
  std::string software_version;
  std::vector<SourceInstance> sources;  // SourceInstanceSequence: what the report was made from
  std::string pdf;
};

std::string MakeEncapsulatedPdf(const EncapsulatedPdfSpec& spec);

}  // namespace procnode
