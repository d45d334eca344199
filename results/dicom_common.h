// What every result object writer shares: setting attributes with errors that name the object and
// the attribute, the source study's Patient and General Study attributes, and today's date/time.
#pragma once

#include <dcmtk/dcmdata/dcitem.h>

#include <array>
#include <string>

#include "processors/series_volume.h"

namespace procnode {

// Error(kInternal) "<object>: cannot set <Keyword>: <DCMTK text>".
void PutAttribute(DcmItem& item, const DcmTagKey& tag, const std::string& value, const char* object);
void CheckDcmtk(const OFCondition& status, const char* object, const char* what);

// Patient (C.7.1.1) and General Study (C.7.2.1) attributes from the source, in its character set.
void PutStudyIdentity(DcmItem& item, const StudyIdentity& study, const char* object);

// Where pixel (row, column) of a single-frame source instance falls in the volume, in fractional
// voxel indices: base + row * per_row + column * per_column. The source needs its plane position
// and orientation (callers check).
struct FrameMapping {
  std::array<double, 3> base, per_row, per_column;
};
FrameMapping MapFrame(const SourceInstance& source, const Volume& volume);

// A Decimal String (VR DS, at most 16 characters) of `value`.
std::string DecimalString(double value);

struct DicomNow {
  std::string date, time;  // YYYYMMDD, HHMMSS
};
DicomNow CurrentDicomDateTime();

}  // namespace procnode
