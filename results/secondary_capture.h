// Secondary Capture key images (PS3.3 A.8.1, Secondary Capture Image Storage): the overlays the PDF
// report draws (a slice with the processor's labels in colour), one RGB image each, for PACS and
// viewers that cannot display SEG. One classic SC image per key image rather than a multi-frame
// true-colour object: the views differ in size (axial, sagittal), every PACS shows classic SC,
// and each image keeps its own caption (ImageComments, DerivationDescription). Same study and
// patient as the source; Modality the source's (so hanging protocols place them with it);
// BurnedInAnnotation NO (label colours only; no text is drawn into the pixels). Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/report_section.h"
#include "processors/series_volume.h"

namespace procnode {

struct SecondaryCaptureSpec {
  StudyIdentity study;
  std::string series_instance_uid;
  std::vector<std::string> sop_instance_uids;  // one per image
  int series_number = 9005;
  std::string series_description;
  std::string modality;  // the source's; "OT" when empty
  std::string source_series_instance_uid;
  std::string software_version;
  std::string legend;  // what the colours mean, in words (DerivationDescription)
};

// One DICOM Part 10 object per image. Error(kInvalidInput) for an empty or malformed image.
std::vector<std::string> MakeSecondaryCaptures(const SecondaryCaptureSpec& spec, const std::vector<ReportImage>& images);

}  // namespace procnode
